"""Writing keeper config tables as TOML files in tests (tomllib only reads)."""

from collections.abc import Mapping
from typing import Any


def toml_text(table: Mapping[str, Any]) -> str:
    """A config table as TOML (strings, numbers, booleans, lists of those, nested tables)."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item)
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def section(prefix: str, body: Mapping[str, Any]) -> list[str]:
        lines = [f"[{prefix}]"] if prefix else []
        lines += [f'"{key}" = {value(item)}' for key, item in body.items() if not isinstance(item, Mapping)]
        for key, item in body.items():
            if isinstance(item, Mapping):
                lines += section(f"{prefix}.{key}" if prefix else key, item)
        return lines

    return "\n".join(section("", table)) + "\n"
