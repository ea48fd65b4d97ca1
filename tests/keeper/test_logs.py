"""The keeper's log output: text for a terminal, JSON lines with the cycle's fields for a log collector."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from keeper.logs import HANDLER_NAME, configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_fields_a_call_passes(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    logging.getLogger("keeper.cycle").warning("cycle %d %s", 7, "refused", extra={"cycle_id": 7, "status": "refused"})
    logging.getLogger("keeper.cycle").debug("not shown at INFO")
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["message"] == "cycle 7 refused" and (record["cycle_id"], record["status"]) == (7, "refused")
    assert (record["level"], record["logger"]) == ("WARNING", "keeper.cycle")
    assert record["time"].endswith("+00:00")


def test_text_lines_and_one_handler_however_often_configured(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "json")
    configure_logging("WARNING", "text")
    logging.getLogger("keeper.service").warning("stopping")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING keeper.service: stopping")
    assert [h.get_name() for h in logging.getLogger().handlers].count(HANDLER_NAME) == 1


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_urls_are_logged_without_their_credentials(capsys: pytest.CaptureFixture[str], log_format: str) -> None:
    configure_logging("INFO", log_format)
    url = "https://keeper:pw-1@rpc.example/v3/" + "ab" * 16
    logging.getLogger("chain.rpc").warning("RPC fail-over: %s now serves", url,
                                           extra={"reason": "tried https://rpc.example/x?apikey=k3y"})
    [line] = capsys.readouterr().err.splitlines()
    assert "pw-1" not in line and "ab" * 16 not in line and "k3y" not in line
    assert "RPC fail-over: https://***@rpc.example/v3/*** now serves" in line
    if log_format == "json":
        assert json.loads(line)["reason"] == "tried https://rpc.example/x?apikey=***"
