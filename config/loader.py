"""Reading the configuration: the TOML file (relative paths mean: next to it), the environment, and one error
style for every problem (`ConfigError`: the file, then one line per key with its environment variable)."""

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url

from config.schema import ENV_NESTED_DELIMITER, ENV_PREFIX, Config
from vaultbot.redact import redact

# pydantic's error types for a key the model does not have (models, and the strict dataclasses of strategy).
_UNKNOWN_KEY = frozenset({"extra_forbidden", "unexpected_keyword_argument"})


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and every bad key."""


def load_config(path: Path | None, *, keeper: bool = False) -> Config:
    """The configuration in the TOML file at `path` (None: the defaults), with environment overrides applied;
    `keeper` also requires what the keeper cannot run without (`require_keeper`)."""
    if path is None:
        return build_config({}, origin="(defaults)", keeper=keeper)
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist (or is not a file)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from error
    return build_config(table, origin=str(path), base_dir=path.parent, keeper=keeper)


def build_config(table: dict[str, Any], *, origin: str, base_dir: Path | None = None, keeper: bool = False) -> Config:
    """Validates `table` (plus the environment); `origin` names it in errors; relative paths from `base_dir`."""
    try:
        config = Config(**table)
    except ValidationError as error:
        raise ConfigError(describe_errors(error, origin)) from error
    if keeper:
        require_keeper(config, origin)
    return _resolve_paths(config, base_dir) if base_dir is not None else config


def require_keeper(config: Config, origin: str) -> None:
    """The sections only the keeper needs: `[chain]`, and `[markets]` unless the devnet's synthetic data maps them."""
    problems = []
    if config.chain is None:
        problems.append(f"{key_named('chain')}: missing key")
    if not config.markets and config.sources.synthetic is None:
        problems.append(f"{key_named('markets')}: map at least one DeFiLlama pool id to a vault market address")
    if problems:
        raise ConfigError(_report(origin, problems))


def describe_errors(error: ValidationError, origin: str, within: tuple[str, ...] = ()) -> str:
    """One line per problem: the dotted key (under `within`, for a section validated on its own), its
    environment variable, and what is wrong."""
    lines = []
    for problem in error.errors(include_url=False):
        key = ".".join(str(part) for part in (*within, *problem["loc"]))
        kind = problem["type"]
        message = problem["msg"].removeprefix("Value error, ")
        if kind in _UNKNOWN_KEY:
            message = "unknown key (misspelt, or in the wrong section?)"
        elif kind == "missing":
            message = "missing key"
        where = key_named(key) if key else "config"
        shown = "" if kind == "missing" or kind in _UNKNOWN_KEY or not key else f"; got {problem.get('input')!r}"
        lines.append(redact(f"{where}: {message}{shown}"))  # a URL in the config may hold its API key
    return _report(origin, lines)


def key_named(key: str) -> str:
    """`key a.b (env VAULTBOT_A__B)`: a dotted key as every config error names it."""
    return f"key {key} (env {ENV_PREFIX}{key.upper().replace('.', ENV_NESTED_DELIMITER)})"


def problem_with(origin: str, key: str, message: str) -> ConfigError:
    """A `ConfigError` for one key checked outside the model (`backtest.settings.vault_guardrails`)."""
    return ConfigError(_report(origin, [f"{key_named(key)}: {message}"]))


def _report(origin: str, problems: list[str]) -> str:
    """One problem on one line; several under a line that counts them."""
    if len(problems) == 1:
        return f"config {origin}: {problems[0]}"
    return "\n".join([f"config {origin}: {len(problems)} problems", *(f"  {line}" for line in problems)])


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    """Relative paths given in the file mean: next to the file. Defaults (under state_dir()) stay as they are."""

    def resolved(section: BaseModel, names: tuple[str, ...], resolve: Callable[[Any], Any]) -> BaseModel:
        given = [name for name in names if name in section.model_fields_set and getattr(section, name) is not None]
        return section.model_copy(update={name: resolve(getattr(section, name)) for name in given})

    def path(value: Path) -> Path:
        return value if value.is_absolute() else base_dir / value

    return config.model_copy(update={
        "chain": config.chain and resolved(config.chain, ("deployment", "keystore", "password_file"), path),
        "model": resolved(config.model, ("artifact_dir",), path),
        "service": resolved(resolved(config.service, ("database_url",), lambda url: _resolve_sqlite(url, base_dir)),
                            ("decisions_dir",), path),
    })


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    """A relative SQLite file in the config file means: next to the file (other databases are untouched)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    if Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str(base_dir / parsed.database)).render_as_string(hide_password=False)


