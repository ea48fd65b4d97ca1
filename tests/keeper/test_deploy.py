"""The service files in keeper/deploy stay true to the code: the systemd unit runs a command line the CLI
accepts with environment variables it reads, and every metric the alert rules use is one the keeper exports."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import typer.main
import yaml

from cli import app
from keeper.metrics import KeeperMetrics
from tests.cli import vaultbot
from vaultbot.paths import CACHE_DIR_ENV

DEPLOY = Path(__file__).resolve().parents[2] / "keeper" / "deploy"


def unit_service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "vaultbot-keeper.service")
    return parser["Service"]


def test_the_unit_runs_a_command_line_the_cli_accepts() -> None:
    program, *args = shlex.split(unit_service()["ExecStart"])
    assert program.endswith("/vaultbot") and args[:2] == ["keeper", "run"]
    result = vaultbot(*args, "--help")  # parses every option given, then stops at --help
    assert result.exit_code == 0, result.output


def test_the_units_environment_is_read_by_the_keeper() -> None:
    environment = dict(item.split("=", 1) for item in shlex.split(unit_service()["Environment"]))
    run = typer.main.get_command(app).commands["keeper"].commands["run"]
    log_format = next(param for param in run.params if param.name == "log_format")
    assert set(environment) == {log_format.envvar, CACHE_DIR_ENV}
    assert environment[log_format.envvar] == "json"


def test_every_metric_the_alerts_use_is_exported() -> None:
    rules = [rule for group in yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())["groups"]
             for rule in group["rules"]]
    assert len({rule["alert"] for rule in rules}) == len(rules) >= 5
    metrics = KeeperMetrics(max_age_s=3 * 3600)
    metrics.cycle_finished("refused", success=False, failure_kind="data", reason="stale", duration_s=1.0)
    exported = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    for rule in rules:
        assert rule["annotations"]["summary"], rule["alert"]
        used = set(re.findall(r"\bvaultbot_[a-z_]+", rule["expr"]))
        assert used <= exported, f"{rule['alert']} uses {used - exported}, which the keeper does not export"
