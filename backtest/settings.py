"""The `[backtest]` table of the TOML config: execution costs, the loss model and the simulated vault.

The same file holds the `[strategy]` table the keeper uses (read by `strategy.config.load_strategy_config`).
Every key has a default, so a config file (or the table) may be left out:

```toml
[backtest]
asset_symbol = "USDC"       # the vault's asset: only pools of it are investable (others inform the model only)
asset_decimals = 6          # the vault asset's decimals (amounts are simulated in base units)
gas_price_gwei = 20.0       # gas price of every rebalance call
native_price = 3000.0       # price of the gas token in asset units (ETH in USD)
gas_per_rebalance = 100000  # gas of one rebalance call ...
gas_per_market = 150000     # ... plus this per market it moves
slippage_bps = 1.0          # share of every moved amount lost in execution
max_markets = 16            # without a market list: the asset's pools with data in the window, by mean TVL

[backtest.guardrails]       # the vault's parameters; defaults are the devnet's
min_rebalance_interval = 3600
max_turnover_bps = 5000
max_loss_bps = 10
min_idle_bps = 500
[backtest.guardrails.markets."<pool id>"]   # optional: the listed pools; default caps 4000 bps, no absolute cap
cap_bps = 4000
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backtest.errors import BacktestError
from strategy.guardrails import MAX_MARKETS, Guardrails
from strategy.units import BPS, UINT256_MAX

DEFAULT_GUARDRAILS: dict[str, int] = {  # the devnet's (devnet.deploy.DevnetParams)
    "min_rebalance_interval": 3600,
    "max_turnover_bps": 5000,
    "max_loss_bps": 10,
    "min_idle_bps": 500,
}
DEFAULT_MARKET_LIMITS: dict[str, int] = {"cap_bps": 4000, "cap_abs": UINT256_MAX}


class BacktestSettings(BaseModel):
    """The `[backtest]` table; `guardrails` is kept raw until the pool universe is known (`vault_guardrails`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The pools-metadata symbol of the vault's asset (case-insensitive; see `backtest.market.investable_pools`).
    asset_symbol: Annotated[str, Field(min_length=1)] = "USDC"
    asset_decimals: Annotated[int, Field(ge=0, le=36)] = 6
    gas_price_gwei: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 20.0
    native_price: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 3000.0
    gas_per_rebalance: Annotated[int, Field(ge=0)] = 100_000
    gas_per_market: Annotated[int, Field(ge=0)] = 150_000
    slippage_bps: Annotated[float, Field(ge=0, le=BPS, allow_inf_nan=False)] = 1.0
    max_markets: Annotated[int, Field(ge=1, le=MAX_MARKETS)] = MAX_MARKETS
    guardrails: dict[str, Any] = Field(default_factory=dict)

    @property
    def unit(self) -> int:
        """Base units per asset unit."""
        return 10**self.asset_decimals

    def gas_cost(self, markets_moved: int) -> int:
        """What one rebalance call moving `markets_moved` markets costs, in asset base units."""
        return self.price_of_gas(self.gas_per_rebalance + self.gas_per_market * markets_moved)

    def price_of_gas(self, gas: int) -> int:
        """`gas` units at `gas_price_gwei`, in asset base units (chain mode prices a receipt's gasUsed with it)."""
        return round(gas * self.gas_price_gwei * 1e-9 * self.native_price * self.unit)

    def configured_markets(self) -> list[str] | None:
        """The pools `[backtest.guardrails.markets]` lists, or None when it does not."""
        markets = self.guardrails.get("markets")
        return list(markets) if isinstance(markets, Mapping) and markets else None


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file; a missing or malformed file is a `BacktestError` naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise BacktestError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise BacktestError(f"cannot read config file {path}: {error}") from None


def load_backtest_settings(path: Path | None) -> BacktestSettings:
    """The `[backtest]` table of the TOML file at `path` (defaults without a file or table)."""
    if path is None:
        return BacktestSettings()
    table = read_toml(path).get("backtest", {})
    try:
        return BacktestSettings.model_validate(table)
    except ValidationError as error:
        raise BacktestError(f"{path}: {describe_validation_error(error, '[backtest]')}") from None


def vault_guardrails(settings: BacktestSettings, universe: Sequence[str], where: str = "config") -> Guardrails:
    """The simulated vault's guardrails: `[backtest.guardrails]` over the defaults, listing `universe`'s pools
    (with default caps) unless the table lists markets itself."""
    table = dict(settings.guardrails)
    listed = table.pop("markets", None) or dict.fromkeys(universe, {})
    if not isinstance(listed, Mapping):
        raise BacktestError(f"{where}: [backtest.guardrails] markets: expected a table of pool id -> caps")
    markets = {
        pool: {**DEFAULT_MARKET_LIMITS, **limits} if isinstance(limits, Mapping) else limits
        for pool, limits in listed.items()
    }
    try:
        return Guardrails.from_mapping({**DEFAULT_GUARDRAILS, **table, "markets": markets})
    except ValidationError as error:
        raise BacktestError(f"{where}: {describe_validation_error(error, '[backtest.guardrails]')}") from None


def describe_validation_error(error: ValidationError, table: str) -> str:
    """The first problem of a pydantic error as `table key.sub: message` on one line."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    extra = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{table} {key}: {first['msg']}{extra}"
