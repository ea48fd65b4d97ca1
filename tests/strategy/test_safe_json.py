"""`strategy.safe_json`: JSON from outside is refused past `MAX_JSON_DEPTH` before `json.loads` recurses into it,
in time linear in its length, and otherwise read exactly as `json.loads` reads it; `DensityLimit` counts a body's
values, never fewer than it holds, and refuses more than it allows unparsed."""

import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy.safe_json import MAX_JSON_DEPTH, DensityLimit, JSONTooDeep, json_depth, json_values, loads

# Text that puts brackets and quotes where a depth count could be fooled: inside strings, escaped, non-ASCII.
TRICKY_TEXT = st.text(alphabet=st.sampled_from('ab[]{}"\\é\u2603 '), max_size=8)
VALUES = st.recursive(st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
                      max_leaves=30)


def reference_depth(text: str) -> int:
    """The depth counted bracket by bracket, strings removed (the way it was counted before the fast path)."""
    return depth_without(re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL), text)


def depth_without(strings: re.Pattern[str], text: str) -> int:
    """The deepest bracket count of `text` once the matches of `strings` are removed, bracket by bracket."""
    depth = deepest = 0
    for bracket in re.finditer(r"[\[\]{}]", strings.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


@given(VALUES, st.booleans())
def test_the_depth_is_counted_as_json_nests_and_the_value_read_as_json_reads_it(value, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text) == reference_depth(text)
    assert loads(text) == json.loads(text) and loads(text.encode()) == json.loads(text.encode())


# The strings' pattern before its loop was unrolled: one character, or one escape, at a time.
ONE_BY_ONE = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)


@given(st.lists(TRICKY_TEXT, max_size=12).map("".join))
def test_any_text_even_not_json_is_counted_as_strings_matched_one_character_at_a_time(text: str) -> None:
    # unclosed strings, lone backslashes at the end, brackets anywhere: the same strings removed, the same depth
    assert json_depth(text) == depth_without(ONE_BY_ONE, text)


def test_past_the_limit_is_refused_as_bad_json_and_at_it_read() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_depth(at_limit) == MAX_JSON_DEPTH and loads(at_limit) is not None
    with pytest.raises(JSONTooDeep) as refused:
        loads("[" + at_limit + "]")
    assert isinstance(refused.value, json.JSONDecodeError) and str(refused.value) == "nested deeper than 256 levels"
    with pytest.raises(JSONTooDeep):
        loads(b"[" * 100_000)  # brackets that never close count as well


def test_a_string_that_never_closes_is_scanned_once() -> None:
    # '"\"\"\"...' matched from each escaped quote again: 1.8 s for 20 KB, 6.6 s for 40 KB, a 64 MiB body never.
    def seconds(escaped_quotes: int) -> float:
        text = "[" * (MAX_JSON_DEPTH + 1) + '"' + '\\"' * escaped_quotes  # enough brackets to be scanned
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            json_depth(text)
            best = min(best, time.perf_counter() - started)
        return best

    # 100 times the length: about 100 times the time when linear, 10,000 when quadratic
    assert seconds(20_000) < 1_000 * seconds(200)


def values_held(value: object) -> int:
    """The values `value` is made of, keys included, one by one."""
    if isinstance(value, dict):
        return 1 + sum(1 + values_held(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(values_held(item) for item in value)
    return 1


# Strings without the bytes a value follows: the count is then exact.
PLAIN_TEXT = st.text(alphabet=st.sampled_from('ab]}"\\é\u2603 '), max_size=8)
PLAIN_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | PLAIN_TEXT,
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PLAIN_TEXT, inner, max_size=3),
                            max_leaves=30)


@given(PLAIN_VALUES, st.sampled_from([(",", ":"), (", ", ": ")]))
def test_the_values_of_a_body_are_counted_as_json_holds_them(value, separators) -> None:
    assert json_values(json.dumps(value, separators=separators).encode()) == values_held(value)


@given(VALUES, st.booleans(), st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_the_values_of_any_body_are_never_undercounted(value, ascii_only: bool, encoding: str) -> None:
    # brackets and separators inside strings, other encodings' bytes: counted more, never fewer
    body = json.dumps(value, ensure_ascii=ascii_only).encode(encoding)
    assert json_values(body) >= values_held(value)


def test_nested_empty_arrays_count_one_value_each() -> None:
    # `[[[]]]` is three lists: counting separators alone saw one value in 1,000 of them
    assert json_values(b"[" + b",".join([b"[[[]]]"] * 1_000) + b"]") == 3_001


LIMIT = DensityLimit(dense_past=100, min_bytes_per_value=4, max_values=1_000)


def dense_body(values: int, length: int) -> bytes:
    """A JSON array of `values` values in all (itself included), padded with spaces to `length` bytes."""
    body = b"[" + b",".join([b"0"] * (values - 1)) + b"]"
    assert len(body) <= length
    return body[:-1] + b" " * (length - len(body)) + b"]"


def test_a_body_up_to_dense_past_is_never_counted() -> None:
    assert LIMIT.refusal(dense_body(50, 100)) is None  # 2 bytes a value, but small


def test_past_dense_past_a_value_per_min_bytes_is_allowed_and_one_more_refused() -> None:
    assert LIMIT.refusal(dense_body(200, 800)) is None
    assert LIMIT.refusal(dense_body(200, 799)) == ("200 JSON values in 799 bytes, more than one per 4 bytes that an "
                                                   "answer past 100 may hold")
    assert LIMIT.refusal(dense_body(201, 800)) is not None


def test_past_dense_past_max_values_are_allowed_and_one_more_refused() -> None:
    assert LIMIT.refusal(dense_body(1_000, 10_000)) is None
    assert LIMIT.refusal(dense_body(1_001, 10_000)) == ("1,001 JSON values in 10,000 bytes, more than the 1,000 an "
                                                        "answer may hold")
    assert DensityLimit(100, 4).refusal(dense_body(1_001, 10_000)) is None  # no cap but the bytes'


def test_empty_objects_are_refused_by_the_values_they_hold() -> None:
    body = b"[" + b",".join([b"{}"] * 300) + b"]"  # 301 values in 901 bytes, under 4 bytes each
    assert LIMIT.refusal(body) == ("301 JSON values in 901 bytes, more than one per 4 bytes that an answer past 100 "
                                   "may hold")
    assert LIMIT.refusal(body + b" " * 303) is None  # 1,204 bytes: 4 a value
