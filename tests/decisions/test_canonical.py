"""The canonical encoding against RFC 8785's own examples, and input tables that survive it exactly."""

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devnet.llama_server import SyntheticLlama
from strategy.data import align_to_daily
from strategy.data.defillama import parse_pools
from strategy.decision_record import (
    DecisionError,
    canonical_json,
    input_tables,
    inputs_document,
    table_from_json,
    table_json,
)


def test_rfc8785_section_3_2_2_example() -> None:
    # RFC 8785 §3.2.2, the sorting and number example: the expected output is the RFC's, byte for byte
    value = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
             "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"\u002f",
             "literals": [None, True, False]}
    assert canonical_json(value).encode("utf-8") == (
        b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        b'"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')


def test_rfc8785_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3: by UTF-16 code units, so the emoji (surrogates 0xD83D...) sorts before U+FB33
    keys = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O"}
    order = list(json.loads(canonical_json(keys)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(DecisionError, match="no canonical JSON"):
        canonical_json({"apy": float("inf")})


@given(st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=1, max_size=20))
def test_float_columns_round_trip_bit_for_bit(values: list[float]) -> None:
    table = pd.DataFrame({"apy": pd.Series(values, dtype="float64")})
    back = table_from_json(json.loads(canonical_json(table_json(table))))
    # -0.0 is spelled 0 by RFC 8785 (docs/decision-bundle.md); every other double comes back with its bits
    assert [repr(v) for v in back["apy"]] == [repr(0.0 if v == 0 else v) for v in table["apy"]]


def test_the_models_tables_survive_the_encoding_exactly() -> None:
    llama = SyntheticLlama.generate(seed=3, days=40, pools=3)
    now = datetime.now(UTC)
    tables = input_tables(align_to_daily(llama.history(now)), llama.news(now), parse_pools(llama.pools_payload(now)))
    at = pd.Timestamp(now).floor("D")
    encoded = json.loads(canonical_json(inputs_document(at, tables)))
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table_from_json(encoded[name]), table.reset_index(drop=True))
    decoded = {name: table_from_json(encoded[name]) for name in tables}
    assert canonical_json(inputs_document(at, decoded)) == canonical_json(encoded)
