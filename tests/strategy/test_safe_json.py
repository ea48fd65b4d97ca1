"""`strategy.safe_json`: JSON from outside is refused past `MAX_JSON_DEPTH` before `json.loads` recurses into it,
in time linear in its length, and otherwise read exactly as `json.loads` reads it."""

import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategy.safe_json import MAX_JSON_DEPTH, JSONTooDeep, json_depth, loads

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
