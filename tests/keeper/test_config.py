"""The keeper's configuration: TOML file, environment overrides, and errors that name the key and the file."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import make_url

from chain.deployment import Deployment, MarketInfo
from config import Config, ConfigError, load_config
from devnet.anvil import FOUNDRY_PORT
from devnet.config import devnet_config
from sources import GateLimits
from tests.keeper.tomlfile import toml_text
from vaultbot.paths import STATE_DIR_ENV, state_dir

REPO = Path(__file__).resolve().parents[2]
POOL = "aa70268e-4b52-42bf-a116-608b370f9501"
MARKET = "0x" + "12" * 20
VAULT = "0x" + "34" * 20


def minimal(**sections: dict) -> dict:
    table = {
        "chain": {"rpc_urls": ["http://127.0.0.1:8545"], "chain_id": 1, "vault": VAULT,
                  "keystore": "keeper.json", "password_env": "KEEPER_PASSWORD"},
        "markets": {POOL: MARKET},
    }
    for name, body in sections.items():
        table[name] = table.get(name, {}) | body
    return table


def write(tmp_path: Path, table: dict, name: str = "keeper.toml") -> Path:
    path = tmp_path / name
    path.write_text(toml_text(table))
    return path


def problem(tmp_path: Path, table: dict) -> str:
    path = write(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        load_config(path, keeper=True)
    assert str(path) in str(caught.value)
    return str(caught.value)


def test_a_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, minimal()))
    assert config.chain.vault == "0x" + "34" * 20 and config.markets == {POOL: "0x" + "12" * 20}
    assert config.chain.keystore == tmp_path / "keeper.json"  # relative to the file
    assert (config.chain.max_fee_gwei, config.chain.bump_percent) == (100.0, 15)
    assert config.service.interval_s == 3600 and config.service.health_age_s == 3 * 3600
    assert config.service.decision_age_s == 3600  # one interval: then the next cycle decides anew
    assert config.gate == GateLimits()
    assert config.sources.yields_base_url == "https://yields.llama.fi"


def test_relative_paths_in_the_file_mean_next_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path.parent)  # not where the file is
    table = minimal()
    table["service"] = {**table.get("service", {}), "decisions_dir": "bundles", "database_url": "sqlite:///j.db"}
    table["model"] = {**table.get("model", {}), "artifact_dir": "models"}
    config = load_config(write(tmp_path, table))
    assert config.service.decisions_dir == tmp_path / "bundles"
    assert config.model.artifact_dir == tmp_path / "models"
    assert config.service.database_url == f"sqlite:///{tmp_path / 'j.db'}"


def test_one_file_serves_every_program_and_the_keeper_requires_its_sections(tmp_path: Path) -> None:
    table = minimal(backtest={"gas_price_gwei": 2.0}, strategy={"model": {"seed": 3}})
    config = load_config(write(tmp_path, table), keeper=True)  # the keeper reads a file with a [backtest] table
    assert config.backtest.gas_price_gwei == 2.0 and config.strategy.model.seed == 3
    backtest_only = write(tmp_path, {"backtest": {"gas_price_gwei": 2.0}}, "backtest.toml")
    assert load_config(backtest_only).chain is None  # the backtester needs no chain
    with pytest.raises(ConfigError, match=r"2 problems\n  key chain \(env VAULTBOT_CHAIN\): missing key\n"
                                          r"  key markets \(env VAULTBOT_MARKETS\): map at least one"):
        load_config(backtest_only, keeper=True)
    assert "key backtest.slippage (env VAULTBOT_BACKTEST__SLIPPAGE): unknown key" in problem(
        tmp_path, minimal(backtest={"slippage": 1}))  # still strict inside every section


def test_the_example_config_is_valid_and_writes_into_the_devnets_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(REPO / "keeper" / "example-config.toml")
    # what `vaultbot devnet up` run from the checkout writes: the deployment in the state dir, anvil on 8545
    monkeypatch.chdir(REPO)
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    state = state_dir().resolve()
    assert config.chain.deployment.resolve() == state / "devnet.json"
    assert urlsplit(config.chain.rpc_urls[0]).port == FOUNDRY_PORT
    # the journal and the model store go there too (where the devnet keeper keeps its own), not into the source
    journal = Path(make_url(config.service.database_url).database)
    assert journal.resolve() == state / "keeper.sqlite"
    assert config.model.artifact_dir.resolve() == state / "model"


@pytest.mark.parametrize(("table", "key", "message"), [
    ({"chain": {"rpc_urls": ["http://x"], "vault": VAULT, "keystore": "k", "password_env": "P"},
      "markets": {POOL: MARKET}}, "chain.chain_id", "missing key"),
    (minimal(chain={"chain_idd": 5}), "chain.chain_idd", "unknown key"),
    (minimal(service={"interval": 60}), "service.interval", "unknown key"),
    (minimal(chain={"chain_id": "mainnet"}), "chain.chain_id", "valid integer"),
    (minimal(chain={"rpc_urls": ["ws://127.0.0.1:8546"]}), "chain.rpc_urls.0", "not an http(s) URL"),
    (minimal(markets={POOL: "0x1234"}), f"markets.{POOL}", "not an Ethereum address"),
    (minimal(gate={"max_age": "a day"}), "gate.max_age", "duration"),
    (minimal(chain={"bump_percent": 5}), "chain.bump_percent", "greater than or equal to 10"),
    (minimal(chain={"max_fee_gwei": 1e10}), "chain.max_fee_gwei", "less than or equal to 100000"),
    (minimal(service={"interval_s": float("inf")}), "service.interval_s", "finite number"),  # TOML's inf
    (minimal(sources={"http": {"read_timeout": float("inf")}}), "sources.http.read_timeout", "finite number"),
    (minimal(service={"database_url": "garbage"}), "service.database_url", "not a database URL"),
    (minimal(service={"database_url": ""}), "service.database_url", "not a database URL"),
    (minimal(service={"database_url": "mysql://u@127.0.0.1:1/db"}), "service.database_url",
     "a mysql database; the journal runs on sqlite or postgresql"),
])
def test_a_wrong_or_missing_key_is_named_with_its_environment_variable(tmp_path, table, key, message) -> None:
    text = problem(tmp_path, table)
    env = "VAULTBOT_" + key.upper().replace(".", "__")
    assert f"key {key} (env {env})" in text and message in text


@pytest.mark.parametrize(("chain", "message"), [
    ({"deployment": "devnet.json"}, "exactly one of chain.vault"),
    ({"password_file": "pw"}, "exactly one of chain.password_env and chain.password_file"),
    ({"raw_key_env": "KEY"}, "exactly one of chain.keystore and chain.raw_key_env"),
])
def test_conflicting_chain_settings_are_refused(tmp_path, chain, message) -> None:
    assert message in problem(tmp_path, minimal(chain=chain))


def test_a_raw_key_is_only_allowed_on_the_devnet(tmp_path) -> None:
    table = minimal()
    table["chain"] = {k: v for k, v in table["chain"].items() if k not in ("keystore", "password_env")}
    table["chain"]["raw_key_env"] = "KEEPER_KEY"
    assert "allowed only on the devnet (chain_id 31337)" in problem(tmp_path, table)
    table["chain"]["chain_id"] = 31337
    assert load_config(write(tmp_path, table)).chain.raw_key_env == "KEEPER_KEY"


def test_markets_must_be_given_and_distinct(tmp_path) -> None:
    assert "map at least one DeFiLlama pool" in problem(tmp_path, minimal() | {"markets": {}})
    assert "repeated" in problem(tmp_path, minimal(markets={"other-pool": MARKET}))


def test_synthetic_data_only_on_the_devnet(tmp_path) -> None:
    assert "allowed only on chain 31337" in problem(tmp_path, minimal(sources={"synthetic": {"seed": 1}}))


def test_the_vault_is_in_its_pools_data_only_where_that_data_is_real(tmp_path) -> None:
    assert not load_config(write(tmp_path, minimal())).chain.vault_in_pool_data  # the devnet's default
    assert load_config(write(tmp_path, minimal(chain={"vault_in_pool_data": True}))).chain.vault_in_pool_data
    devnet = minimal(chain={"chain_id": 31337, "vault_in_pool_data": True}, sources={"synthetic": {"seed": 1}})
    assert "chain.vault_in_pool_data: sources.synthetic's made-up pools never hold the vault" in problem(
        tmp_path, devnet)


def test_the_environment_overrides_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VAULTBOT_SERVICE__INTERVAL_S", "90")
    monkeypatch.setenv("VAULTBOT_CHAIN__RPC_URLS", '["http://a:1", "http://b:2"]')
    monkeypatch.setenv("VAULTBOT_GATE__MAX_APY_JUMP", "12.5")
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))  # vaultbot's own variables are not config keys
    config = load_config(write(tmp_path, minimal(service={"interval_s": 30})))
    assert config.service.interval_s == 90
    assert config.chain.rpc_urls == ["http://a:1", "http://b:2"]
    assert config.gate.max_apy_jump == 12.5


def test_the_environment_overrides_strict_strategy_keys(tmp_path, monkeypatch) -> None:
    # The allocator's settings are strict floats: an override arrives as a string and must still apply.
    monkeypatch.setenv("VAULTBOT_STRATEGY__ALLOCATOR__LOSS_GIVEN_EVENT", "0.2")
    monkeypatch.setenv("VAULTBOT_STRATEGY__ALLOCATOR__RISK_AVERSION", "2")
    config = load_config(write(tmp_path, minimal()))
    assert config.strategy.allocator.loss_given_event == 0.2
    assert config.strategy.allocator.risk_aversion == 2.0


def test_a_bad_environment_override_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VAULTBOT_SERVICE__INTERVAL_S", "soon")
    assert "key service.interval_s (env VAULTBOT_SERVICE__INTERVAL_S)" in problem(tmp_path, minimal())
    monkeypatch.delenv("VAULTBOT_SERVICE__INTERVAL_S")
    monkeypatch.setenv("VAULTBOT_SERVICE__INTERVALL", "5")
    assert "key service.intervall" in problem(tmp_path, minimal())


@pytest.mark.parametrize(("variable", "value", "key"), [
    ("VAULTBOT_CHAIN__RPC_URLS", "not json", "chain.rpc_urls"),  # a list
    ("VAULTBOT_MARKETS", "{bad", "markets"),  # a table
    ("VAULTBOT_CHAIN", "[1, 2", "chain"),  # a section
    ("VAULTBOT_STRATEGY__ALLOCATOR", "{x", "strategy.allocator"),  # a nested section
])
def test_an_environment_value_that_is_not_json_is_named(tmp_path, monkeypatch, variable, value, key) -> None:
    # pydantic-settings raised a SettingsError naming only the section, as a traceback in every command.
    monkeypatch.setenv(variable, value)
    message = problem(tmp_path, minimal())
    assert f"key {key} (env {variable})" in message and repr(value) in message


def test_missing_and_unparsable_files_are_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path / 'nope.toml'} does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('[chain]\nrpc_urls = ["http://x"\n')
    with pytest.raises(ConfigError, match=rf"{broken} is not valid TOML: Unclosed array"):
        load_config(broken)


def test_strategy_section_is_validated_with_the_keepers_file_named(tmp_path) -> None:
    text = problem(tmp_path, minimal(strategy={"no_such_setting": 1}))
    assert "key strategy.no_such_setting" in text


def test_devnet_default_comes_from_the_deployment_json(tmp_path, monkeypatch) -> None:
    deployment = Deployment(
        rpc_url="http://127.0.0.1:8545", chain_id=31337, asset="0x" + "01" * 20, vault=VAULT,
        markets=[MarketInfo(address=MARKET, name="Aave USDC", apy=0.042)], admin="0x" + "02" * 20,
        keeper="0x" + "03" * 20, guardian="0x" + "04" * 20, depositors=[], abi_dir=str(tmp_path / "abi"),
        deployed_at=10,
    )
    path = tmp_path / "devnet.json"
    deployment.save(path)
    config = devnet_config(path)
    assert isinstance(config, Config)
    assert (config.chain.rpc_urls, config.chain.chain_id, config.chain.deployment) == (
        ["http://127.0.0.1:8545"], 31337, path)
    assert config.sources.synthetic is not None and config.model.train_if_missing
    assert config.service.database_url == f"sqlite:///{tmp_path / 'keeper.sqlite'}"
    assert config.model.artifact_dir == tmp_path / "model"
    monkeypatch.setenv("VAULTBOT_SERVICE__INTERVAL_S", "42")
    assert devnet_config(path).service.interval_s == 42


def test_no_devnet_means_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="vaultbot devnet up"):
        devnet_config(tmp_path / "devnet.json")


def test_a_bad_url_is_named_without_its_credentials(tmp_path: Path) -> None:
    table = minimal()
    table["chain"]["rpc_urls"] = ["wss://keeper:s3cret@rpc.example/v3/0123456789abcdef0123456789abcdef"]
    message = problem(tmp_path, table)
    assert "key chain.rpc_urls.0" in message and "'wss://***@rpc.example/v3/***' is not an http(s) URL" in message
    assert "s3cret" not in message and "0123456789abcdef" not in message
