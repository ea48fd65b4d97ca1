"""The sections of the configuration file, one model each; `config.schema.Config` puts them together.

Each section is validated strictly (an unknown key is an error naming it); every key has a default except
in `[chain]`, which only the keeper and the depositor tools need.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    model_validator,
)

from chain.deployment import Address
from chain.keys import DEVNET_CHAIN_ID
from journal.db import checked_database_url, sqlite_url
from sources import SourcesConfig
from sources.config import FiniteNonNegative, FinitePositive
from strategy.config import Seed
from strategy.guardrails import MAX_MARKETS
from strategy.units import GWEI
from vaultbot.paths import state_dir

_FROZEN = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class ChainSettings(BaseModel):
    """Where the vault lives and how the keeper signs and pays for its transactions."""

    model_config = _FROZEN

    rpc_urls: list[HttpUrl] = Field(min_length=1)  # tried in order; the next one when one fails
    chain_id: PositiveInt
    vault: Address | None = None
    deployment: Path | None = None  # a devnet deployment JSON: vault address and ABIs from it
    keystore: Path | None = None  # an encrypted JSON keystore (geth/eth-account format)
    password_env: str | None = None  # environment variable holding the keystore password
    password_file: Path | None = None
    raw_key_env: str | None = None  # environment variable holding a raw private key: chain 31337 only
    max_fee_gwei: Annotated[float, Field(gt=0, le=100_000)] = 100.0  # never pay more per gas; above 1e5: a typo
    priority_fee_gwei: FiniteNonNegative = 1.5
    receipt_timeout_s: FinitePositive = 180.0  # then replace the transaction with bumped fees
    bump_percent: Annotated[int, Field(ge=10, le=500)] = 15  # nodes require at least 10 % for a replacement
    rpc_timeout_s: FinitePositive = 10.0
    # true: the vault's markets ARE the DeFiLlama pools `[markets]` maps them from (a real deployment), so each
    # pool's recorded supply and APY already hold the vault's own position there, which the keeper then takes
    # out (`strategy.market_supply.besides_vault`); false: the data does not hold the vault (the devnet's
    # MockMarkets beside real or synthetic data)
    vault_in_pool_data: bool = False

    @model_validator(mode="after")
    def _one_vault_one_key(self) -> Self:
        if (self.vault is None) == (self.deployment is None):
            raise ValueError("give exactly one of chain.vault (an address) and chain.deployment (a devnet JSON)")
        if (self.keystore is None) == (self.raw_key_env is None):
            raise ValueError("give exactly one of chain.keystore and chain.raw_key_env")
        if self.keystore is not None and (self.password_env is None) == (self.password_file is None):
            raise ValueError("chain.keystore needs exactly one of chain.password_env and chain.password_file")
        if self.raw_key_env is not None and self.chain_id != DEVNET_CHAIN_ID:
            raise ValueError(f"chain.raw_key_env is allowed only on the devnet (chain_id {DEVNET_CHAIN_ID}); "
                             f"use chain.keystore for chain {self.chain_id}")
        return self


class SyntheticSource(BaseModel):
    """Serve `devnet.llama_server.SyntheticLlama` on 127.0.0.1 instead of reading DeFiLlama (devnet only)."""

    model_config = _FROZEN

    seed: Seed = 7
    days: Annotated[int, Field(ge=60)] = 730
    pools: PositiveInt | None = None  # default: one per market the vault lists


class SourceSettings(SourcesConfig):
    """`sources.SourcesConfig` plus what the keeper reads each cycle."""

    news_feeds: list[HttpUrl] = Field(default_factory=list)  # RSS/Atom feeds for the news features; none: no news
    # DeFiLlama coins ("chain:address") whose prices the data gate checks
    price_coins: list[str] = Field(default_factory=list)
    price_days: Annotated[int, Field(ge=2)] = 3
    # Days of the pools' underlying-token prices joined into each cycle's history (peg features: 30-day windows).
    price_history_days: Annotated[int, Field(ge=2)] = 60
    synthetic: SyntheticSource | None = None


class ModelPlacement(BaseModel):
    """Where the model artifact lives and what to do without one."""

    model_config = _FROZEN

    artifact_dir: Path = Field(default_factory=lambda: state_dir() / "model")
    # An empty model store is fine: the first cycle trains a model from the /chart history of the markets'
    # pools (and extra_pools) and the promotion policy judges it. Off: an empty store is an error at start.
    train_if_missing: bool = False
    # Pools fetched every cycle beside the markets' pools: more training rows, and the cross-sectional
    # features (ranks against other pools) the model was trained with. Not gated, not allocated to.
    extra_pools: list[str] = []


class ServiceSettings(BaseModel):
    """The scheduler, the journal database and the metrics endpoint."""

    model_config = _FROZEN

    interval_s: FinitePositive = 3600.0
    misfire_grace_s: FinitePositive = 300.0  # a cycle starting later than this after its time is skipped
    # A cycle's data sources must answer within this many seconds of its start; then it is refused (journaled).
    cycle_deadline_s: FinitePositive = 300.0
    database_url: Annotated[str, AfterValidator(checked_database_url)] = Field(
        default_factory=lambda: sqlite_url(state_dir() / "keeper.sqlite"))
    decisions_dir: Path = Field(default_factory=lambda: state_dir() / "decisions")  # a bundle per decision
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464  # 0: any free port
    health_max_age_s: FinitePositive | None = None  # default: three intervals
    # a journaled transaction of an older decision is abandoned, not broadcast again; default: one interval
    decision_max_age_s: FinitePositive | None = None
    # a cycle that holds reports the markets' values when the vault's last report is older: between rebalances
    # only a report moves totalAssets, and with it the depositors' share price
    report_interval_s: FinitePositive = 86_400.0

    @property
    def health_age_s(self) -> float:
        return self.health_max_age_s if self.health_max_age_s is not None else 3 * self.interval_s

    @property
    def decision_age_s(self) -> float:
        """The next cycle decides anew: a decision older than one interval is superseded."""
        return self.decision_max_age_s if self.decision_max_age_s is not None else self.interval_s


class BacktestSettings(BaseModel):
    """The `[backtest]` table: execution costs and the simulated vault. `guardrails` is kept raw until the pool
    universe is known (`backtest.settings.vault_guardrails`).

    ```toml
    [backtest]
    asset_symbol = "USDC"       # the vault's asset: only pools of it are investable (others inform the model only)
    asset_decimals = 6          # the vault asset's decimals (amounts are simulated in base units)
    gas_price_gwei = 20.0       # the simulated chain's gas price (live, the keeper reads the chain's)
    max_markets = 16            # without a market list: the asset's pools with data in the window, by mean TVL
    supply_dilution = true      # the vault's deposits dilute each market's supply APY (strategy.market_supply),
                                # in the replay's yields and in its allocator's plans
    ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The pools-metadata symbol of the vault's asset (case-insensitive; see `backtest.market.investable_pools`).
    asset_symbol: Annotated[str, Field(min_length=1)] = "USDC"
    asset_decimals: Annotated[int, Field(ge=0, le=36)] = 6
    gas_price_gwei: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] = 20.0  # as max_fee_gwei
    max_markets: Annotated[int, Field(ge=1, le=MAX_MARKETS)] = MAX_MARKETS
    # Off, every position earns the recorded APY whatever its size and the allocator plans as if every market
    # were deep: a replay of an amount its markets could not take earns more than it could have.
    supply_dilution: bool = True
    guardrails: dict[str, Any] = Field(default_factory=dict)

    @property
    def unit(self) -> int:
        """Base units per asset unit."""
        return 10**self.asset_decimals

    @property
    def gas_price_wei(self) -> int:
        return round(self.gas_price_gwei * GWEI)

    def configured_markets(self) -> list[str] | None:
        """The pools `[backtest.guardrails.markets]` lists, or None when it does not."""
        markets = self.guardrails.get("markets")
        return list(markets) if isinstance(markets, Mapping) and markets else None
