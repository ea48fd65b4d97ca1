"""The one configuration model of vaultbot and its loader (see `config.schema` for the sections)."""

from config.loader import ConfigError, build_config, describe_errors, load_config
from config.schema import ENV_NESTED_DELIMITER, ENV_PREFIX, Config
from config.sections import (
    BacktestSettings,
    ChainSettings,
    ModelPlacement,
    ServiceSettings,
    SourceSettings,
    SyntheticSource,
)

__all__ = [
    "ENV_NESTED_DELIMITER", "ENV_PREFIX", "BacktestSettings", "ChainSettings", "Config", "ConfigError",
    "ModelPlacement", "ServiceSettings", "SourceSettings", "SyntheticSource", "build_config", "describe_errors",
    "load_config",
]
