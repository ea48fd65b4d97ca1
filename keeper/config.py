"""The keeper's configuration: one TOML file, overridden by VAULTBOT_* environment variables.

Sections (keeper/example-config.toml documents every key): `[chain]`, `[sources]`, `[markets]`,
`[strategy]` (`strategy.config.StrategyConfig`, shared with the backtester), `[model]`, `[service]`, `[gate]`
(`sources.GateLimits`). An environment variable VAULTBOT_<SECTION>__<KEY> (nested keys joined by
`__`, values of lists and tables as JSON) wins over the file, e.g. VAULTBOT_CHAIN__RPC_URLS='["http://..."]'.

`load_config(path)` raises `ConfigError` naming the file and each wrong, missing or unknown key.
`devnet_config(deployment_json)` is the default when no file is given: the devnet's chain, anvil's well-known
keeper key, the synthetic DeFiLlama of `devnet.llama_server`, a model trained at start.
"""

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from web3 import Web3

from chain.keys import DEVNET_CHAIN_ID
from journal.db import sqlite_url
from sources import GateLimits, SourcesConfig
from strategy.config import StrategyConfig
from vaultbot.paths import state_dir

ENV_PREFIX = "VAULTBOT_"
ENV_NESTED_DELIMITER = "__"
# Key of anvil's default account 1 (mnemonic "test test ... junk"): the devnet deployment's keeper. Public.
ANVIL_KEEPER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEVNET_KEY_ENV = "VAULTBOT_DEVNET_KEEPER_KEY"

_FROZEN = ConfigDict(extra="forbid", frozen=True)


def _checksum_address(value: str) -> str:
    if not Web3.is_address(value):
        raise ValueError(f"{value!r} is not an Ethereum address (0x + 40 hex digits)")
    return Web3.to_checksum_address(value)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


Address = Annotated[str, AfterValidator(_checksum_address)]
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
    priority_fee_gwei: NonNegativeFloat = 1.5
    receipt_timeout_s: PositiveFloat = 180.0  # then replace the transaction with bumped fees
    bump_percent: Annotated[int, Field(ge=10, le=500)] = 15  # nodes require at least 10 % for a replacement
    rpc_timeout_s: PositiveFloat = 10.0

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

    seed: int = 7
    days: Annotated[int, Field(ge=60)] = 730
    pools: PositiveInt | None = None  # default: one per market the vault lists


class KeeperSources(SourcesConfig):
    """`sources.SourcesConfig` plus what the keeper reads each cycle."""

    news_feeds: list[HttpUrl] = []  # RSS/Atom feeds for the news features; none: no news
    price_coins: list[str] = []  # DeFiLlama coins ("chain:address") whose prices the data gate checks
    price_days: Annotated[int, Field(ge=2)] = 3
    # Days of the pools' underlying-token prices joined into each cycle's history (peg features: 30-day windows).
    price_history_days: Annotated[int, Field(ge=2)] = 60
    synthetic: SyntheticSource | None = None


class ModelPlacement(BaseModel):
    """Where the model artifact lives and what to do without one."""

    model_config = _FROZEN

    artifact_dir: Path = Field(default_factory=lambda: state_dir() / "model")
    # Without an artifact: train one at start from the /chart history of the markets' pools (and
    # extra_pools), save it to artifact_dir and use it. Off: a missing artifact is an error at start.
    train_if_missing: bool = False
    # Pools fetched every cycle beside the markets' pools: more training rows, and the cross-sectional
    # features (ranks against other pools) the model was trained with. Not gated, not allocated to.
    extra_pools: list[str] = []


class ServiceSettings(BaseModel):
    """The scheduler, the journal database and the metrics endpoint."""

    model_config = _FROZEN

    interval_s: PositiveFloat = 3600.0
    misfire_grace_s: PositiveFloat = 300.0  # a cycle starting later than this after its time is skipped
    database_url: str = Field(default_factory=lambda: sqlite_url(state_dir() / "keeper.sqlite"))
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464  # 0: any free port
    health_max_age_s: PositiveFloat | None = None  # default: three intervals

    @property
    def health_age_s(self) -> float:
        return self.health_max_age_s if self.health_max_age_s is not None else 3 * self.interval_s


class _EnvSource(EnvSettingsSource):
    """VAULTBOT_* variables; nested values that read as JSON numbers or booleans become them.

    pydantic-settings leaves such leaves as strings for the field to convert, which strict fields (the
    allocator's) refuse: VAULTBOT_STRATEGY__ALLOCATOR__RISK_AVERSION=2 must still work.
    """

    def explode_env_vars(self, field_name: str, field: FieldInfo, env_vars: Any) -> dict[str, Any]:
        return _decode_scalars(super().explode_env_vars(field_name, field, env_vars))


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


class KeeperConfig(BaseSettings):
    """Everything the keeper service needs; see the module docstring for how it is read."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid", frozen=True
    )

    chain: ChainSettings
    sources: KeeperSources = Field(default_factory=KeeperSources)
    markets: dict[str, Address] = {}  # DeFiLlama pool id -> the vault market it stands for
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    model: ModelPlacement = Field(default_factory=ModelPlacement)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    gate: GateLimits = Field(default_factory=GateLimits)

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
        if not self.markets and self.sources.synthetic is None:
            raise ValueError("markets: map at least one DeFiLlama pool id to a vault market address")
        if self.sources.synthetic is not None and self.chain.chain_id != DEVNET_CHAIN_ID:
            raise ValueError(f"sources.synthetic serves made-up data: allowed only on chain {DEVNET_CHAIN_ID}")
        return self


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and every bad key."""


def load_config(path: Path) -> KeeperConfig:
    """The configuration in the TOML file at `path`, with environment overrides applied."""
    if not path.is_file():
        raise ConfigError(f"keeper config {path} does not exist (or is not a file)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"keeper config {path} is not valid TOML: {error}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read keeper config {path}: {error}") from error
    return build_config(table, origin=str(path), base_dir=path.parent)


def build_config(table: dict[str, Any], *, origin: str, base_dir: Path | None = None) -> KeeperConfig:
    """Validates `table` (plus the environment); `origin` names it in errors; relative paths from `base_dir`."""
    try:
        config = KeeperConfig(**table)
    except ValidationError as error:
        raise ConfigError(describe_errors(error, origin)) from error
    return _resolve_paths(config, base_dir) if base_dir is not None else config


def describe_errors(error: ValidationError, origin: str) -> str:
    """One line per problem: the dotted key, its environment variable, and what is wrong."""
    lines = [f"keeper config {origin}: {error.error_count()} problem(s)"]
    for problem in error.errors(include_url=False):
        key = ".".join(str(part) for part in problem["loc"])
        kind = problem["type"]
        message = problem["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = "unknown key (misspelt, or in the wrong section?)"
        elif kind == "missing":
            message = "missing key"
        where = f"key {key} (env {ENV_PREFIX}{key.upper().replace('.', ENV_NESTED_DELIMITER)})" if key else "config"
        shown = "" if kind in ("missing", "extra_forbidden") or not key else f"; got {problem.get('input')!r}"
        lines.append(f"  {where}: {message}{shown}")
    return "\n".join(lines)


def _resolve_paths(config: KeeperConfig, base_dir: Path) -> KeeperConfig:
    """Relative paths given in the file mean: next to the file. Defaults (under state_dir()) stay as they are."""

    def resolved(section: BaseModel, names: tuple[str, ...], resolve: Callable[[Any], Any]) -> BaseModel:
        given = [name for name in names if name in section.model_fields_set and getattr(section, name) is not None]
        return section.model_copy(update={name: resolve(getattr(section, name)) for name in given})

    def path(value: Path) -> Path:
        return value if value.is_absolute() else base_dir / value

    return config.model_copy(update={
        "chain": resolved(config.chain, ("deployment", "keystore", "password_file"), path),
        "model": resolved(config.model, ("artifact_dir",), path),
        "service": resolved(config.service, ("database_url",), lambda url: _resolve_sqlite(url, base_dir)),
    })


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    """A relative SQLite file in the config file means: next to the file (other databases are untouched)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    if Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str(base_dir / parsed.database)).render_as_string(hide_password=False)


def devnet_config(deployment_path: Path) -> KeeperConfig:
    """The configuration `vaultbot keeper` uses without --config: the devnet of `deployment_path`.

    Everything lives next to the deployment JSON (journal keeper.sqlite, model/); data come from the
    synthetic DeFiLlama (`devnet.llama_server`), the keeper signs with anvil's well-known account 1 key (read
    from $VAULTBOT_DEVNET_KEEPER_KEY, which defaults to it). Environment overrides apply as usual.
    """
    from chain.deployment import Deployment

    try:
        deployment = Deployment.load(deployment_path)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"no --config given and no usable devnet: {error}") from error
    home = deployment_path.parent
    table = {
        "chain": {"rpc_urls": [deployment.rpc_url], "chain_id": deployment.chain_id,
                  "deployment": str(deployment_path), "raw_key_env": DEVNET_KEY_ENV,
                  "receipt_timeout_s": 30.0},
        "sources": {"synthetic": {}, "http": {"cache_dir": str(home / "http-cache")}},
        "model": {"artifact_dir": str(home / "model"), "train_if_missing": True},
        "service": {"database_url": sqlite_url(home / "keeper.sqlite"), "interval_s": 300.0},
    }
    return build_config(table, origin=f"(devnet default from {deployment_path})")
