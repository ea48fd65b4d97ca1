"""The keeper's log output: human-readable lines on a terminal, or one JSON object per line for a service
whose logs a collector (journald, Loki, ...) parses.

JSON records carry the time (ISO 8601, UTC), level, logger and message, plus the fields a call passes in
`extra` (the cycle logs cycle_id, status, reason, decision_hash, tx_hash and duration_s), so a collector can
filter on them without parsing messages. Secrets are never logged in either format: keys stay in
`chain.keys`, and every line is redacted (`vaultbot.redact`) as it is written, whichever library logged a URL.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from vaultbot.redact import redact

LogFormat = Literal["text", "json"]
HANDLER_NAME = "vaultbot"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted (a test runner may have swapped it since), with
    the credentials of any URL in the line (message, fields, traceback) masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:  # set by StreamHandler.__init__; the property decides
        pass


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Send records at `level` and above to stderr in `log_format`; replaces an earlier call's handler.

    Raises ValueError for an unknown level name."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)


def json_formatter() -> JsonFormatter:
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})
