"""`vaultbot decisions export`: the bundles of the decisions journaled in a range of UTC days, and each model
once, copied byte for byte into a directory that `vaultbot verify --bundle` reproduces from; decisions journaled
without a bundle are named, not fatal."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config import Config
from decisions.bundle import bundle_path, model_path
from journal.db import Decision
from keeper.cycle import Keeper
from tests.cli import vaultbot
from tests.journal.damage import damage, offline_config, written_journal
from tests.keeper.keeper_world import config_file, journal

pytestmark = pytest.mark.anvil

LEGACY = "0x" + "cd" * 32  # a decision journaled before bundles existed


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def journaled_on(config: Config, days: dict[str, datetime]) -> None:
    """Each decision hash's journal rows moved to the given time (a journal kept over several days)."""
    db = journal(config)
    try:
        with db.session() as session:
            for decision in session.scalars(select(Decision)):
                decision.created = days[decision.decision_hash]
    finally:
        db.close()


def test_a_day_range_is_exported_and_verifies(rebalanced: tuple[str, Path, str], keeper: Keeper,
                                              keeper_config: Config, keeper_table: dict[str, Any],
                                              tmp_path: Path) -> None:
    tx, bundles, deployment = rebalanced
    [sent] = [path.stem for path in bundles.glob("0x*.json")]
    keeper.run_cycle(dry_run=True)  # held just after a rebalance: a second decision and bundle, by the same model
    [first, later] = [decision.decision_hash for decision in keeper.db.decisions_between(None, None)]
    assert first == sent and later != sent and bundle_path(bundles, later).is_file()
    legacy_cycle = keeper.db.start_cycle(dry_run=True)
    keeper.db.record_decision(legacy_cycle, inputs_hash=LEGACY, model_hash=LEGACY, predictions={}, targets={},
                              allocation_status="held", expected_gain=0.0, decision_hash=LEGACY, record="{}")
    journaled_on(keeper_config, {sent: datetime(2026, 3, 1, tzinfo=UTC),  # the first instant of --from
                                 LEGACY: datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC),  # the last second of --to
                                 later: datetime(2026, 3, 3, tzinfo=UTC)})  # the day after
    config = config_file(keeper_table, tmp_path)
    out = tmp_path / "archive"

    result = vaultbot("decisions", "export", "--out", str(out), "--from", "2026-03-01", "--to", "2026-03-02",
                      "--config", str(config))
    assert result.exit_code == 0, result.output
    exported = files_under(out)
    model_hash = next(name.split("/")[1] for name in exported if name.startswith("models/"))
    source = files_under(bundles)
    assert exported == {name: data for name, data in source.items()
                        if name == bundle_path(Path(), sent).name or name.startswith(f"models/{model_hash}/")}
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"no bundle for decision {LEGACY} (cycle {legacy_cycle}, journaled 2026-03-02 23:59 "
                               "UTC)"), result.output
    assert lines[-1] == (f"exported 1 bundle(s) and 1 model(s), {sum(map(len, exported.values())):,} bytes, to "
                         f"{out} (2 decision(s) journaled in the range)"), result.output

    verified = vaultbot("verify", tx, "--bundle", str(out), "--json", deployment)
    assert verified.exit_code == 0 and verified.output.strip().splitlines()[-1].startswith("REPRODUCED:"), \
        verified.output

    everything = tmp_path / "everything"
    result = vaultbot("decisions", "export", "--out", str(everything), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "exported 2 bundle(s) and 1 model(s)" in result.output  # the model both decided with, once
    assert files_under(everything) == {name: data for name, data in source.items()
                                       if name.startswith(("0x", "models/"))}
    assert (model_path(everything, model_hash) / "artifact.json").is_file()

    result = vaultbot("decisions", "export", "--out", str(tmp_path / "none"), "--from", "2027-01-01",
                      "--config", str(config))
    assert result.exit_code == 0 and "exported 0 bundle(s) and 0 model(s), 0 bytes" in result.output, result.output
    assert not (tmp_path / "none").exists()


def test_to_the_last_day_there_is(rebalanced: tuple[str, Path, str], keeper_config: Config,
                                  keeper_table: dict[str, Any], tmp_path: Path) -> None:
    """--to 9999-12-31 has no day after it to end the range at: the range is open, and that day's last second in."""
    _, bundles, _ = rebalanced
    [sent] = [path.stem for path in bundles.glob("0x*.json")]
    journaled_on(keeper_config, {sent: datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)})
    out = tmp_path / "archive"

    result = vaultbot("decisions", "export", "--out", str(out), "--from", "2026-03-01", "--to", "9999-12-31",
                      "--config", str(config_file(keeper_table, tmp_path)))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("exported 1 bundle(s) and 1 model(s)"), result.output
    assert bundle_path(out, sent).read_bytes() == bundle_path(bundles, sent).read_bytes()


@pytest.mark.parametrize(("sql", "row"), [
    ("UPDATE decisions SET predictions = 'not json'", "predictions holds 'not json', not a JSON object"),
    ("UPDATE decisions SET created = 'last week'", "created holds 'last week', not a timestamp"),
])
def test_a_damaged_journal_row_is_one_line_and_nothing_is_exported(sql: str, row: str, tmp_path: Path) -> None:
    url = written_journal(tmp_path / "keeper.sqlite")
    damage(tmp_path / "keeper.sqlite", sql)
    out = tmp_path / "archive"
    result = vaultbot("decisions", "export", "--out", str(out), "--config", str(offline_config(url, tmp_path)))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert (result.exit_code, result.output.splitlines()) == (
        1, [f"error: keeper database {url}: row 1 of table decisions is damaged: {row}"])
    assert not out.exists()
