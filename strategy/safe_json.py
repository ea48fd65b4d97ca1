"""JSON from outside the process (an RPC's answer, a data source's body, a file a user gives), refused when it
nests deeper than any real payload before `json.loads` sees it, or (`DensityLimit`) holds more values than its
reader allows.

Why: `json.loads` recurses once per level, and web3 (through py_ecc) lifts the recursion limit to 100,000, past
what the C stack holds; a document nested ~100,000 deep then ends the process with a segmentation fault
instead of raising. A lying RPC could stop the keeper that way on every cycle, before fail-over saw an error.
Parsed, JSON takes memory by its values, not its bytes: 64 MiB of `{},` took 1.5 GB, of `1.5,` 0.6 GB.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 256  # real payloads nest a few levels
# Possessive, and ending at the text's end when no quote closes it: a string that is never closed (`"\\"\\"...`) is
# scanned once, where a plain `"(...)*"` would scan it again from each of its escaped quotes (quadratic). Its
# loop unrolled (runs of plain characters between escapes), the same matches as `"(?:[^"\\]|\\.)*+` in half the
# time: a /chart answer's strings are most of it.
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET_BYTES = bytes(byte for byte in range(256) if byte not in b"[]{}")
_NOT_BEFORE_A_VALUE = bytes(byte for byte in range(256) if byte not in b"[{,:")


@dataclass(frozen=True)
class DensityLimit:
    """How many JSON values a body past `dense_past` bytes may hold: one per `min_bytes_per_value` bytes, and at
    most `max_values` (None: as many as its bytes allow)."""

    dense_past: int
    min_bytes_per_value: int
    max_values: int | None = None

    def refusal(self, body: bytes) -> str | None:
        """Why `body` holds more values than this allows ("N JSON values in B bytes, more than ..."), unparsed;
        None when it does not."""
        if len(body) <= self.dense_past:
            return None
        allowed = len(body) // self.min_bytes_per_value
        if self.max_values is not None:
            allowed = min(allowed, self.max_values)
        if _values_or_more(body) <= allowed:  # one pass over a real body, where `json_values` takes three
            return None
        values = json_values(body)
        held = f"{values:,} JSON values in {len(body):,} bytes"
        if values * self.min_bytes_per_value > len(body):
            return (f"{held}, more than one per {self.min_bytes_per_value} bytes that an answer past "
                    f"{self.dense_past:,} may hold")
        if self.max_values is not None and values > self.max_values:
            return f"{held}, more than the {self.max_values:,} an answer may hold"
        return None


def json_values(body: bytes) -> int:
    """How many values a JSON body holds, keys included, or more (never fewer), counted in C without parsing it.

    Every value but the first follows a `[` (an array's first), a `,` or a `:`, and every key a `{` or a `,`;
    an empty `[]` or `{}` has a bracket before no value. These bytes inside strings count too (more, never
    fewer); so do a UTF-16 or UTF-32 body's, whose separators hold them and whose empty brackets are not adjacent.
    """
    return _values_or_more(body) - body.count(b"[]") - body.count(b"{}")


def _values_or_more(body: bytes) -> int:
    """`json_values`, an empty array or object counted as holding one value."""
    return 1 + len(body.translate(None, _NOT_BEFORE_A_VALUE))


class JSONTooDeep(json.JSONDecodeError):
    """Nested deeper than `MAX_JSON_DEPTH`: a `JSONDecodeError`, so whoever handles bad JSON handles this too."""

    def __init__(self, document: str) -> None:
        super().__init__(f"nested deeper than {MAX_JSON_DEPTH} levels", document, 0)
        self.args = (self.msg,)  # no "line 1 column 1": the depth is not at one place


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`, or `JSONTooDeep` past `MAX_JSON_DEPTH`; bytes are decoded as `json.loads` does."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    # Counting brackets is cheap and bounds the depth: most answers have too few to scan them one by one.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH:
        raise JSONTooDeep(text)
    return json.loads(text)


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not count; a bracket
    closing another kind counts as closing it, so this is never less than what `json.loads` would recurse)."""
    # UTF-8 bytes, the brackets kept: no byte of a multibyte character is one (`bytes.translate` runs in C)
    brackets = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET_BYTES)
    if not brackets:
        return 0
    # A running sum in numpy: a loop over 20 million brackets (a 64 MiB body of `{}`) took 13 s in Python.
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return max(int(np.cumsum(steps).max()), 0)
