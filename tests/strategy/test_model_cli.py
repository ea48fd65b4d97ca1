"""`vaultbot model train|evaluate|explain` in process (`tests.cli`), on small synthetic or CSV data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from keeper.modelstore import ModelStore
from strategy.models import ModelArtifact
from strategy.synthetic import generate_market
from tests.cli import vaultbot

FAST_TOML = """
[strategy.model]
num_boost_round = 30
early_stopping_rounds = 5
min_train_rows = 50
num_threads = 1
"""
SMALL = ["--synthetic-pools", "6", "--synthetic-days", "160"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "vaultbot.toml"
    path.write_text(FAST_TOML)
    return path


def run(*args: str):
    return vaultbot("model", *args)


def test_train_on_synthetic_data_says_so_and_saves_an_artifact(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "model"
    result = run("train", "--config", str(config), "--out", str(out), "--seed", "5", *SMALL)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC data" in result.stderr and "seed 5" in result.stderr
    artifact = ModelArtifact.load(out)
    assert f"model {artifact.content_hash} saved to {out}" in result.stdout
    assert artifact.settings.seed == 5 and artifact.settings.num_boost_round == 30
    assert "validation: yield MAE" in result.stdout

    explained = run("explain", "--artifact", str(out), "--top", "5")
    assert explained.exit_code == 0, explained.output
    assert "feature importance (gain share)" in explained.stdout and "yield_q10" in explained.stdout
    rows = [line for line in explained.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == list(artifact.importances().index[:5])


def train_at(seed: int, config: Path, out: Path):
    result = run("train", "--config", str(config), "--out", str(out), "--seed", str(seed), *SMALL)
    assert result.exit_code == 0, result.output
    return result, ModelArtifact.load(out).metadata.validation


def test_a_model_without_skill_is_named_with_what_the_keeper_does_with_it(tmp_path: Path, config: Path) -> None:
    risky, validation = train_at(11, config, tmp_path / "risky")  # a risk model that ranks no better than chance
    assert validation["auc"] <= 0.5
    assert (f"warning: the risk model has no skill on its validation split: AUC {validation['auc']:.3f}"
            in risky.stderr)
    assert "while this model decides, the keeper uses its p_event forecasts in every allocation" in risky.stderr
    assert "risk_aversion = 0" in risky.stderr and "warning: the yield model" not in risky.stderr

    worse, validation = train_at(10, config, tmp_path / "worse")  # a yield model worse than persistence
    assert validation["mae_model"] > validation["mae_baseline"]
    assert (f"warning: the yield model is worse than persistence on its validation split: its yield MAE "
            f"{validation['mae_model']:.3f}, persistence's {validation['mae_baseline']:.3f}" in worse.stderr)
    assert "the trailing-best rule decides" in worse.stderr and "adopted as the champion" in worse.stderr

    skilled, validation = train_at(3, config, tmp_path / "skilled")
    assert validation["auc"] > 0.5 and validation["mae_model"] < validation["mae_baseline"]
    assert "warning" not in skilled.output


def test_train_on_a_csv_file_up_to_a_day(tmp_path: Path, config: Path) -> None:
    market = generate_market(n_pools=4, days=150, seed=2)
    data = tmp_path / "history.csv"
    market.history.to_csv(data, index=False)
    result = run("train", "--data", str(data), "--config", str(config), "--out", str(tmp_path / "m"),
                 "--train-end", "2023-04-30")
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" not in result.output
    meta = ModelArtifact.load(tmp_path / "m").metadata
    assert str(meta.train_end.date()) == "2023-04-30" and meta.pools == 4


def test_evaluate_prints_model_against_baselines(config: Path) -> None:
    result = run("evaluate", "--config", str(config), "--test-days", "40", "--fold-days", "20", *SMALL)
    assert result.exit_code == 0, result.output
    for text in ("walk-forward evaluation on synthetic(seed=7)", "2 folds", "yield MAE", "trailing 7-day mean APY",
                 "risk AUC", "risk Brier score", "risk reliability"):
        assert text in result.stdout
    assert "the yield model beats persistence" in result.stdout or "does NOT beat" in result.stdout


def test_evaluate_until_a_day_scores_what_was_known_then_as_a_cut_copy_of_the_data(tmp_path: Path,
                                                                                  config: Path) -> None:
    history = generate_market(n_pools=4, days=150, seed=2).history
    whole, cut = tmp_path / "all.csv", tmp_path / "cut.csv"  # names of one length: one table layout
    history.to_csv(whole, index=False)
    history[history["timestamp"] <= pd.Timestamp("2023-04-30", tz="UTC")].to_csv(cut, index=False)
    args = ("--config", str(config), "--test-days", "20", "--fold-days", "10")
    until = run("evaluate", "--data", str(whole), "--until", "2023-04-30", *args)
    assert until.exit_code == 0, until.output
    assert "to 2023-04-23, 2 folds" in until.stdout  # the last labelled day: a 7-day horizon before the cut
    copy = run("evaluate", "--data", str(cut), *args)
    assert until.stdout.replace("all.csv", "cut.csv") == copy.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "--test-days", "0"], "Invalid value for '--test-days'"),
    (["evaluate", "--until", "2024-13-01"], "'2024-13-01' is not a date"),
    (["train", "--train-end", "someday"], "'someday' is not a date"),
    (["train", "--news", "news.csv"], "--news and --pools go with --data"),
    (["explain", "--top", "0"], "Invalid value for '--top'"),
    (["train", "--synthetic-days", "10"], "Invalid value for '--synthetic-days'"),
])
def test_bad_flags_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_bad_files_exit_1_with_one_line(tmp_path: Path) -> None:
    missing = run("train", "--data", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "--data: file not found" in missing.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[strategy.model]\nlearning_rat = 0.1\n")
    configured = run("evaluate", "--config", str(bad_config))
    unknown = "key strategy.model.learning_rat (env VAULTBOT_STRATEGY__MODEL__LEARNING_RAT): unknown key"
    assert configured.exit_code == 1 and unknown in configured.stderr
    empty = run("explain", "--artifact", str(tmp_path))
    assert empty.exit_code == 1 and "no artifact.json" in empty.stderr
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,pool,apy\n2024-01-01,p,1.0\n")
    data_error = run("evaluate", "--data", str(broken))
    assert data_error.exit_code == 1 and "broken.csv" in data_error.stderr
    assert "Traceback" not in data_error.output


def champion_of(store: ModelStore) -> str | None:
    state = store.load_state()
    return None if state is None or state.champion is None else state.champion.content_hash


def test_train_without_out_saves_where_the_keeper_of_the_same_config_adopts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config import load_config

    monkeypatch.chdir(tmp_path)  # ./model, where it went before, is then in the test's directory
    config = tmp_path / "keeper.toml"
    config.write_text(FAST_TOML + '\n[model]\nartifact_dir = "store"\n')  # relative: next to the file
    store = load_config(config).model.artifact_dir
    assert store == tmp_path / "store"
    result = run("train", "--config", str(config), *SMALL)
    assert result.exit_code == 0, result.output
    artifact = ModelArtifact.load(store)
    assert f"model {artifact.content_hash} saved to {store}, the keeper's model store" in result.stdout
    assert "adopts it as its champion" in result.stdout
    assert champion_of(ModelStore(store)) == artifact.content_hash  # as the keeper reads model.artifact_dir at start

    again = run("train", "--config", str(config), *SMALL)  # now a store the keeper manages: it would ignore it
    assert again.exit_code == 2, again.output
    assert "model store" in again.output and "champion.json" in again.output
    assert champion_of(ModelStore(store)) == artifact.content_hash
    assert not (tmp_path / "model").exists()

    # the keeper promotes a model it trained: explain on the store shows that champion, not the adopted artifact
    from strategy.models.promotion import PolicyState

    elsewhere = run("train", "--config", str(config), "--out", str(tmp_path / "later"), "--seed", "9", *SMALL)
    assert elsewhere.exit_code == 0, elsewhere.output
    assert f"not the keeper's model store {store} (model.artifact_dir of {config}): copied there" in elsewhere.stdout
    promoted = ModelArtifact.load(tmp_path / "later")
    assert promoted.content_hash != artifact.content_hash
    ModelStore(store).write(PolicyState.with_champion(promoted))
    explained = run("explain", "--artifact", str(store), "--top", "3")
    assert explained.exit_code == 0, explained.output
    assert promoted.content_hash[:18] in explained.stdout


def test_train_without_config_or_out_saves_in_the_default_model_store(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from config import load_config

    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert load_config(None).model.artifact_dir == tmp_path / "home" / "model"  # the devnet keeper's too
    monkeypatch.setenv("VAULTBOT_STRATEGY__MODEL__NUM_BOOST_ROUND", "30")  # fast, as FAST_TOML, without a file
    monkeypatch.setenv("VAULTBOT_STRATEGY__MODEL__MIN_TRAIN_ROWS", "50")
    result = run("train", *SMALL)
    assert result.exit_code == 0, result.output
    artifact = ModelArtifact.load(tmp_path / "home" / "model")
    assert f"saved to {tmp_path / 'home' / 'model'}, the keeper's model store" in result.stdout
    assert not (tmp_path / "model").exists()

    explained = run("explain", "--top", "3")  # explain reads where train wrote
    assert explained.exit_code == 0, explained.output
    assert artifact.content_hash[:18] in explained.stdout

