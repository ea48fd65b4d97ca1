"""The `[strategy]` table of the TOML file shared by the keeper and the backtester.

```toml
[strategy.model]            # ModelSettings: targets, training and the LightGBM parameters
seed = 7
horizon_days = 7            # H: the models forecast the mean APY over the next H days, and events in them
retrain_every_days = 30     # the keeper and the backtest retrain this often; `vaultbot model evaluate`'s fold length
# asset_symbol = "USDC"    # losses count in it (a depeg of it is none); left out: the vault's asset
gate_window_days = 21       # a challenger is promoted only if it beats the champion and persistence on these days
fallback_window_days = 14   # the champion's realised error over these days, if worse, hands over to trailing-best
num_boost_round = 400       # at most; early stopping on the validation split picks the number
...
[strategy.allocator]        # strategy.allocator.AllocatorConfig; horizon_days defaults to the model's
risk_aversion = 1.0
```

Every key has a default, so the table (or the file) may be left out. The file is read by `config.load_config`,
which names every unknown or wrong key with its environment variable.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strategy.allocator import AllocatorConfig
from strategy.costs import ExecutionCosts
from strategy.targets import TargetParams
from strategy.units import MAX_WINDOW_DAYS

_FROZEN = ConfigDict(extra="forbid", frozen=True)
LIGHTGBM_INT_MAX = 2**31 - 1  # LightGBM reads its integer parameters as C ints: past this it fails its checks
Fraction = Annotated[float, Field(gt=0, lt=1)]
Seed = Annotated[int, Field(ge=0)]  # numpy's generators take no negative seed
CalibrationMethod = Literal["none", "platt", "isotonic"]  # of the risk model: strategy.models.calibration


# How models are promoted, not how one is trained: left out of an artifact's metadata and content hash
# (`strategy.models.artifact`), so an artifact saved before these settings existed loads with its hash.
PROMOTION_SETTINGS = frozenset({"gate_window_days", "fallback_window_days"})


class ModelSettings(BaseModel):
    """What the models forecast (the targets of `strategy.targets`) and how they are trained."""

    model_config = _FROZEN

    seed: Seed = 7
    # Targets (see strategy.targets.TargetParams for the definitions).
    horizon_days: Annotated[int, Field(ge=1, le=90)] = 7
    peg_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.02
    illiquid_utilization: Annotated[float, Field(gt=0, le=1)] = 0.98
    # The vault's asset, which losses count in (TargetParams.asset_symbol). Left out, it is the vault's: the
    # keeper reads its vault's on chain, a backtest and `vaultbot model` take [backtest] asset_symbol
    # (`for_asset`); an artifact records the one it was trained for (None: prices in USD).
    asset_symbol: Annotated[str, Field(min_length=1)] | None = None
    # Training data: the last validation_fraction of the labelled days drive early stopping; training rows
    # end purge (= horizon) + embargo_days before them, and before train_end.
    retrain_every_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 30
    # None: all history before train_end
    train_window_days: Annotated[int, Field(ge=30, le=MAX_WINDOW_DAYS)] | None = None
    validation_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.2
    embargo_days: Annotated[int, Field(ge=0, le=MAX_WINDOW_DAYS)] = 1
    min_train_rows: Annotated[int, Field(ge=10)] = 100
    # Promotion (strategy.models.promotion): a retrained challenger replaces the champion only if its trial
    # beats both it and persistence over the last gate_window_days labelled days; the trailing-best rule
    # decides while the champion's realised error over the last fallback_window_days labelled days is worse
    # than persistence's, until a challenger is promoted. Not part of a model (`PROMOTION_SETTINGS`).
    gate_window_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 21
    fallback_window_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 14
    # LightGBM.
    num_boost_round: Annotated[int, Field(ge=1, le=10_000)] = 400
    early_stopping_rounds: Annotated[int, Field(ge=1, le=LIGHTGBM_INT_MAX)] = 40
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    num_leaves: Annotated[int, Field(ge=2, le=1024)] = 15
    min_data_in_leaf: Annotated[int, Field(ge=1, le=LIGHTGBM_INT_MAX)] = 40
    feature_fraction: Annotated[float, Field(gt=0, le=1)] = 0.8
    bagging_fraction: Annotated[float, Field(gt=0, le=1)] = 0.8
    lambda_l2: Annotated[float, Field(ge=0)] = 1.0
    yield_objective: Literal["regression", "huber", "regression_l1"] = "huber"
    risk_calibration: CalibrationMethod = "none"  # measured: neither method helped out of sample (README)
    # Results are reproducible for a fixed thread count; one thread also avoids OpenMP spin-waiting slowing
    # training down many times over when the cores are busy with other work (the keeper, a test run).
    num_threads: Annotated[int, Field(ge=1, le=64)] = 1

    def target_params(self) -> TargetParams:
        return TargetParams(
            horizon_days=self.horizon_days,
            peg_tolerance=self.peg_tolerance,
            illiquid_utilization=self.illiquid_utilization,
            asset_symbol=self.asset_symbol,
        )

    def for_asset(self, symbol: str) -> ModelSettings:
        """These settings for a vault of `symbol`. A different `asset_symbol` in the file is a `ValueError`: a
        risk model's losses are counted in one asset, the vault's."""
        if self.asset_symbol is not None and self.asset_symbol.casefold() != symbol.casefold():
            raise ValueError(f"strategy.model.asset_symbol is {self.asset_symbol}, but the vault's asset is {symbol}")
        return self.model_copy(update={"asset_symbol": symbol})


class StrategyConfig(BaseModel):
    """The `[strategy]` table: `model` (ModelSettings), `allocator` (AllocatorConfig) and `costs`
    (`strategy.costs.ExecutionCosts`)."""

    model_config = _FROZEN

    model: ModelSettings = Field(default_factory=ModelSettings)
    allocator: AllocatorConfig = Field(default_factory=lambda: AllocatorConfig(
        horizon_days=ModelSettings().horizon_days))
    costs: ExecutionCosts = Field(default_factory=ExecutionCosts)

    @model_validator(mode="before")
    @classmethod
    def _allocator_horizon_defaults_to_the_models(cls, data: Any) -> Any:
        # The allocator values a forecast over the horizon it was made for unless told otherwise.
        if isinstance(data, dict) and isinstance(data.get("allocator", {}), dict):
            allocator, model = data.get("allocator", {}), data.get("model", {})
            if "horizon_days" not in allocator:
                horizon = (model.get("horizon_days") if isinstance(model, dict)
                           else getattr(model, "horizon_days", None)) or ModelSettings().horizon_days
                data = {**data, "allocator": {**allocator, "horizon_days": horizon}}
        return data

    def target_params(self) -> TargetParams:
        return self.model.target_params()
