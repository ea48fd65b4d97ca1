"""The strategy's value types (`Guardrails`, `VaultState`, `AllocatorConfig`) as bundle JSON and back:
integers as decimal strings (RFC 8785 numbers are doubles, amounts are uint256), floats as numbers, mappings
as arrays of [key, value] pairs in their order (RFC 8785 sorts object keys; the allocator sees the order)."""

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def encode(value: Any) -> Any:
    """`value` with every integer as its decimal string, dataclasses and mappings as objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: encode(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return [[str(key), encode(item)] for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def decode(kind: type[T], document: Any) -> T:
    """The `kind` that `encode` wrote as `document` (validated by its own constructor)."""
    return _decode(kind, document)


def _decode(kind: Any, value: Any) -> Any:
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{field.name: _decode(hints[field.name], value[field.name])
                       for field in dataclasses.fields(kind) if field.name in value})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return None if value is None else _decode(next(a for a in args if a is not type(None)), value)
    if origin is not None and issubclass(origin, Mapping):
        return {key: _decode(args[1], item) for key, item in value}
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value
