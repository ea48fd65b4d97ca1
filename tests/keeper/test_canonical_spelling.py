"""`canonical_json` through json.dumps and `table_json` by column give the bytes rfc8785 and the value-by-value
encoding give: on arbitrary values, on the devnet's and the real data's input tables, and against inputs hashes
taken before either was fast."""

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet.llama_server import SyntheticLlama
from strategy import decision_record
from strategy.data import align_to_daily, load_market_history, load_news, load_pools
from strategy.data.defillama import parse_pools
from strategy.decision_record import (
    DecisionError,
    SpelledTable,
    _cell,
    canonical_json,
    input_tables,
    inputs_hash,
    table_json,
)
from tests.shared_data import real_dataset

SYNTHETIC_NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
REAL_AT = pd.Timestamp("2023-03-12", tz="UTC")  # the day after USDC's lowest close
# Taken with rfc8785 and the value-by-value table encoding, before canonical_json and table_json were fast.
SYNTHETIC_INPUTS_HASH = "0x96f52775a541e84ed6f004c5bb280d67b248566499f050cc5dc394f9e2c51ec0"
REAL_INPUTS_HASH = "0x24db8c382b9a2b5848e5a2d2e82f7a12bdaa7d2d6339ba97db584c76c870cce8"


def synthetic_tables() -> dict[str, pd.DataFrame]:
    llama = SyntheticLlama.generate(seed=3, days=40, pools=3)
    return input_tables(align_to_daily(llama.history(SYNTHETIC_NOW)), llama.news(SYNTHETIC_NOW),
                        parse_pools(llama.pools_payload(SYNTHETIC_NOW)))


def real_tables() -> dict[str, pd.DataFrame] | None:
    real = real_dataset()
    if real is None or real.news is None or real.pools is None:
        return None
    history = align_to_daily(load_market_history(real.history).frame)
    news = load_news(real.news).frame
    return input_tables(history[history["timestamp"] <= REAL_AT], news[news["timestamp"] <= REAL_AT],
                        load_pools(real.pools))


def library(value: object) -> str:
    return rfc8785.dumps(value).decode("utf-8")


def test_inputs_hashes_are_those_taken_before():
    at = pd.Timestamp(SYNTHETIC_NOW).floor("D")
    assert inputs_hash(at, synthetic_tables()) == SYNTHETIC_INPUTS_HASH
    tables = real_tables()
    if tables is None:
        pytest.skip("no real dataset in ../shared/data")
    assert inputs_hash(REAL_AT, tables) == REAL_INPUTS_HASH


def test_input_tables_by_column_are_the_value_by_value_encoding():
    """Uses ../shared/data when it is there (integral TVLs, zero rewards, lists of tokens, booleans)."""
    for tables in (synthetic_tables(), real_tables() or {}):
        for name, table in tables.items():
            expected = [[_cell(value) for value in table[column].tolist()] for column in table.columns]
            assert table_json(table)["rows"] == [list(row) for row in zip(*expected, strict=True)], name


def test_a_table_with_missing_and_edge_values_is_encoded_value_by_value():
    table = pd.DataFrame({
        "timestamp": pd.Series([pd.Timestamp(text, tz="UTC") for text in ("1000-01-01", "2024-06-01 08:00:00.123456",
                                                                          "9999-12-31 23:59:59.999999")],
                               dtype="datetime64[us, UTC]"),
        "late": pd.Series([pd.Timestamp("2024-06-01", tz="UTC"), pd.NaT, pd.Timestamp("2024-06-02", tz="UTC")],
                          dtype="datetime64[us, UTC]"),
        "apy": [np.nan, -0.0, 1e-300], "name": pd.Series(["a", None, "ü"], dtype="str"),
        "flag": [True, False, True], "count": np.array([1, -2, 2**62]),
    })
    expected = [[_cell(value) for value in table[column].tolist()] for column in table.columns]
    assert table_json(table)["rows"] == [list(row) for row in zip(*expected, strict=True)]


def test_the_inputs_document_is_spelled_without_rfc8785(monkeypatch):
    document = {"at": "2024-06-01T00:00:00.000000Z"} | {name: table_json(table)
                                                         for name, table in synthetic_tables().items()}
    expected = library(document)
    calls = []
    monkeypatch.setattr(rfc8785, "dumps", lambda value: calls.append(value))
    assert canonical_json(document) == expected and calls == []


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text()
                | st.floats(allow_nan=True, allow_infinity=True)
                | st.sampled_from([0.0, -0.0, 5.0, -5.0, 1e-4, 9.99e-5, 1e16, 9999999999999998.0, 1e21, 1e-7, 2.0**53,
                                   2**53 - 1, -(2**53) + 1, 2**53, "\ud800", "\ue000", "\U0001f600", "\x00\x1f\"\\"]))
JSON_KEYS = st.text() | st.sampled_from(["\ue000", "\U0001f600", "\ufb33", "a\ud7ff"])
JSON_VALUES = st.recursive(JSON_SCALARS, lambda children: st.lists(children, max_size=6)
                           | st.lists(children, max_size=4).map(tuple)
                           | st.dictionaries(JSON_KEYS, children, max_size=6)
                           | st.dictionaries(JSON_KEYS, children, max_size=4).map(SpelledTable), max_leaves=40)


@settings(max_examples=2000)
@given(JSON_VALUES)
def test_canonical_json_is_rfc8785_on_any_value(value):
    try:
        expected = library(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(DecisionError, match="no canonical JSON"):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_canonical_json_refuses_what_rfc8785_refuses():
    for value in ({1: "a"}, {"a": float("nan")}, [2**53], "\udc00", {"k": {"x": np.float64(1.0), 3: 1}}):
        with pytest.raises(DecisionError, match="no canonical JSON"):
            canonical_json(value)
    assert canonical_json({"b": np.float64(2.5), "a": (1, 2)}) == '{"a":[1,2],"b":2.5}'  # as rfc8785 spells them
    assert json.loads(canonical_json([1e16, 5.0, -0.0])) == [1e16, 5, 0]


def test_a_spelled_table_is_written_as_rfc8785_writes_it_wherever_it_is_held(monkeypatch):
    tables = {name: table_json(table) for name, table in synthetic_tables().items()}
    documents = [tables["history"], [tables["pools"], {"k": 5.0}],
                 {"b": tables["news"], "a": [1.5, tables["pools"]], "z": {"t": tables["history"]}, "\U0001f600": 1}]
    expected = [library(document) for document in documents]
    spellings = [table.text() for table in tables.values()]
    calls, dumps = [], rfc8785.dumps

    def counted(value: Any) -> bytes:
        calls.append(value)
        return dumps(value)

    monkeypatch.setattr(rfc8785, "dumps", counted)
    assert [canonical_json(document) for document in documents] == expected
    assert [table.text() for table in tables.values()] == spellings  # each spelled once, and kept
    assert len(calls) == 1  # the object whose key json sorts otherwise; the tables it holds spelled as they are


def test_a_spelled_table_rfc8785_spells_or_refuses_is_spelled_or_refused_so():
    odd = SpelledTable(columns=[], rows=[[1e-7, 1e21, 5.0]])
    assert canonical_json({"t": odd}) == '{"t":{"columns":[],"rows":[[1e-7,1e+21,5]]}}' == library({"t": odd})
    with pytest.raises(DecisionError, match="no canonical JSON"):
        canonical_json({"t": SpelledTable(rows=[[float("nan")]])})


def moved_on(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables as a keeper's next moved cycle reads them: the first rows gone, a row changed, a row added."""
    moved = {}
    for name, table in tables.items():
        table = table.iloc[1:].copy()
        floats = [column for column in table.columns if table[column].dtype == "float64"]
        if floats:
            table.iloc[0, table.columns.get_loc(floats[0])] = 12.5
        moved[name] = pd.concat([table, table.iloc[[-1]]], ignore_index=True)
    return moved


def test_a_table_of_the_last_ones_columns_is_spelled_as_rfc8785_writes_it_its_rows_shared_not_spelled_again(
        monkeypatch):
    """Uses ../shared/data when it is there."""
    canonical, spelled_rows = decision_record.canonical_json, []

    def recorded(value: Any) -> str:
        spelled_rows.append(value)
        return canonical(value)

    for tables in (synthetic_tables(), real_tables() or {}):
        for name, table in tables.items():
            for _ in range(2):  # spelled whole, then row by row, as it came back
                last = table_json(table)
                last.text()
            moved = table_json(moved_on({name: table})[name])
            kept = {json.dumps(row) for row in last["rows"]}
            new_rows = [row for row in moved["rows"] if json.dumps(row) not in kept]
            expected = library(dict(moved))
            spelled_rows.clear()
            with monkeypatch.context() as patch:
                patch.setattr(decision_record, "canonical_json", recorded)
                assert moved.text() == expected, name
            if name != "pools":  # lists of tokens: object columns, spelled whole every time
                assert spelled_rows == new_rows and len(new_rows) <= 1, name  # the changed row, if any


def test_a_table_mostly_of_new_rows_is_spelled_whole(monkeypatch):
    # the devnet's: its synthetic history dated anew each market day, so that no row comes back
    monkeypatch.setattr(decision_record, "_ROWS", {})  # nothing spelled by an earlier test
    canonical, spelled = decision_record.canonical_json, []
    monkeypatch.setattr(decision_record, "canonical_json", lambda value: spelled.append(value) or canonical(value))
    table = synthetic_tables()["history"]
    for days in range(3):
        dated_anew = table_json(table.assign(timestamp=table["timestamp"] - pd.Timedelta(days=days)))
        spelled.clear()
        assert dated_anew.text() == library(dict(dated_anew))
        assert spelled == [dict(dated_anew)]


def test_rows_that_are_equal_but_spelled_otherwise_are_never_taken_for_each_other():
    # an object column may hold True where the last table held 1.0 (True == 1.0): the table is spelled whole
    for first, then in ((1.0, True), (True, 1), (0.0, False), (-0.0, 0.0)):
        for _ in range(2):
            table_json(pd.DataFrame({"v": pd.Series([first, "a"], dtype=object)})).text()
        now = table_json(pd.DataFrame({"v": pd.Series([then, "a"], dtype=object)}))
        assert now.text() == library(dict(now))
    for _ in range(2):
        table_json(pd.DataFrame({"v": [0.0, 1.5]})).text()
    now = table_json(pd.DataFrame({"v": [-0.0, 1.5]}))  # equal as floats and written alike: 0
    assert now.text() == library(dict(now)) == '{"columns":[{"dtype":"float64","name":"v"}],"rows":[[0],[1.5]]}'
