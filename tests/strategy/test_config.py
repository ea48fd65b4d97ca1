"""The [strategy] table shared by the keeper and the backtester, read by the one loader (`config.load_config`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config
from strategy.config import ModelSettings, StrategyConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vaultbot.toml"
    path.write_text(text)
    return path


def test_defaults_agree_on_the_horizon() -> None:
    config = StrategyConfig()
    assert config.model == ModelSettings()
    assert config.allocator.horizon_days == config.target_params().horizon_days == 7


def test_the_table_sets_model_and_allocator_and_the_allocator_follows_the_models_horizon(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[strategy.model]
seed = 3
horizon_days = 14
illiquid_utilization = 0.95
[strategy.allocator]
risk_aversion = 2
[backtest]
gas_price_gwei = 2.0
""")).strategy
    assert (config.model.seed, config.model.horizon_days) == (3, 14)
    assert config.allocator.horizon_days == 14.0 and config.allocator.risk_aversion == 2.0
    params = config.target_params()
    assert (params.horizon_days, params.illiquid_utilization) == (14, 0.95)
    explicit = load_config(write(tmp_path, "[strategy.model]\nhorizon_days = 14\n"
                                           "[strategy.allocator]\nhorizon_days = 3.5\n")).strategy
    assert explicit.allocator.horizon_days == 3.5


def test_the_training_window_is_all_history_unless_set(tmp_path: Path) -> None:
    assert ModelSettings().train_window_days is None  # expanding: every labelled day before train_end
    config = load_config(write(tmp_path, "[strategy.model]\ntrain_window_days = 365\n")).strategy
    assert config.model.train_window_days == 365


def test_without_a_strategy_table_everything_is_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[backtest]\ngas_price_gwei = 2.0\n")).strategy == StrategyConfig()


def test_settings_are_frozen_and_copied_with_updates() -> None:
    config = StrategyConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.model.seed = 1  # type: ignore[misc]
    copied = config.model_copy(update={"model": config.model.model_copy(update={"seed": 11})})
    assert copied.model.seed == 11 and config.model.seed == 7


@pytest.mark.parametrize(("text", "message"), [
    ("[strategy.model]\nsed = 1\n",
     r"vaultbot.toml: key strategy.model.sed \(env VAULTBOT_STRATEGY__MODEL__SED\): unknown key"),
    ("[strategy]\nmodels = {}\n", r"key strategy.models \(env VAULTBOT_STRATEGY__MODELS\): unknown key"),
    ("[strategy.allocator]\nrisk_avers = 1.0\n", r"key strategy.allocator.risk_avers .*: unknown key"),
    ("[strategy.model]\nhorizon_days = \"week\"\n",
     r"key strategy.model.horizon_days .*: Input should be a valid integer"),
    ("[strategy.model]\nvalidation_fraction = 0.9\nnum_leaves = 1\n",
     r"2 problems\n  key strategy.model.validation_fraction .*: Input should be less than or equal to 0.5.*\n"
     r"  key strategy.model.num_leaves"),
    ("[strategy.model]\ntrain_window_days = 7\n",
     r"key strategy.model.train_window_days \(env VAULTBOT_STRATEGY__MODEL__TRAIN_WINDOW_DAYS\): Input should be "
     r"greater than or equal to 30"),
    ("[strategy.allocator]\nrisk_aversion = -1\n",
     r"key strategy.allocator.risk_aversion .*: Input should be greater than or equal"),
    ("strategy = 3\n", r"key strategy \(env VAULTBOT_STRATEGY\): Input should be a valid dictionary"),
    ("[strategy\n", r"config .*vaultbot.toml is not valid TOML"),
])
def test_bad_keys_are_named_with_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _ = load_config(write(tmp_path, text)).strategy


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config .*nope.toml does not exist"):
        _ = load_config(tmp_path / "nope.toml").strategy


@pytest.mark.parametrize("key", ["min_data_in_leaf", "early_stopping_rounds"])
def test_lightgbm_integers_end_where_its_c_ints_do(key: str) -> None:
    assert getattr(ModelSettings(**{key: 2**31 - 1}), key) == 2**31 - 1
    with pytest.raises(ValueError, match="less than or equal to 2147483647"):
        ModelSettings(**{key: 2**31})  # LightGBM failed its own check inside training
