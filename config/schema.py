"""The one configuration model: every section of the TOML file, overridden by VAULTBOT_* environment variables.

An environment variable VAULTBOT_<SECTION>__<KEY> (nested keys joined by `__`, values of lists and tables as
JSON) wins over the file, e.g. VAULTBOT_CHAIN__RPC_URLS='["http://..."]'. Sections a program does not use
are read and validated all the same, so one file serves the keeper, the backtester and the depositor tools.
"""

import json
from typing import Any, Self

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from chain.keys import DEVNET_CHAIN_ID
from config.sections import (
    Address,
    BacktestSettings,
    ChainSettings,
    ModelPlacement,
    ServiceSettings,
    SourceSettings,
)
from sources import GateLimits
from strategy.config import StrategyConfig

ENV_PREFIX = "VAULTBOT_"
ENV_NESTED_DELIMITER = "__"


class _EnvSource(EnvSettingsSource):
    """VAULTBOT_* variables; nested values that read as JSON numbers or booleans become them.

    pydantic-settings leaves such leaves as strings for the field to convert, which strict fields (the
    allocator's) refuse: VAULTBOT_STRATEGY__ALLOCATOR__RISK_AVERSION=2 must still work.
    """

    def explode_env_vars(self, field_name: str, field: FieldInfo, env_vars: Any) -> dict[str, Any]:
        return _decode_scalars(super().explode_env_vars(field_name, field, env_vars))

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        # A list or table that is not JSON stays text: the model's validation then names its key, variable and
        # value in one line, where pydantic-settings would raise a SettingsError naming only the section.
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


def _decode_scalars(table: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            value = _decode_scalars(value)
        elif isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
            value = parsed if isinstance(parsed, int | float | bool) else value
        decoded[key] = value
    return decoded


class Config(BaseSettings):
    """The whole file: `[chain]` (keeper and depositor tools only), `[sources]`, `[markets]`, `[strategy]`, `[model]`,
    `[service]`, `[gate]` and `[backtest]`; see the module docstring for how it is read."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid", frozen=True
    )

    chain: ChainSettings | None = None  # the keeper and the depositor tools need it (`require_keeper`)
    sources: SourceSettings = Field(default_factory=SourceSettings)
    markets: dict[str, Address] = {}  # DeFiLlama pool id -> the vault market it stands for
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    model: ModelPlacement = Field(default_factory=ModelPlacement)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    gate: GateLimits = Field(default_factory=GateLimits)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment comes first, so it wins.
        return _EnvSource(settings_cls), init_settings

    @model_validator(mode="after")
    def _markets_make_sense(self) -> Self:
        addresses = list(self.markets.values())
        repeated = sorted({a for a in addresses if addresses.count(a) > 1})
        if repeated:
            raise ValueError(f"markets: each market may stand for one pool only; repeated: {', '.join(repeated)}")
        chain_id = self.chain.chain_id if self.chain is not None else None
        if self.sources.synthetic is not None and chain_id != DEVNET_CHAIN_ID:
            raise ValueError(f"sources.synthetic serves made-up data: allowed only on chain {DEVNET_CHAIN_ID}")
        if self.sources.synthetic is not None and self.chain is not None and self.chain.vault_in_pool_data:
            raise ValueError("chain.vault_in_pool_data: sources.synthetic's made-up pools never hold the vault")
        return self


