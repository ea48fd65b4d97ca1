"""Loading market history from CSV, Parquet and DeFiLlama chart JSON: the canonical result, and what bad
files produce (a DataError naming file, line and column, or a recorded repair with strict=False)."""

import json
import math
import os
import threading
from contextlib import contextmanager

import pandas as pd
import pytest

from strategy.data import DataError, load_market_history, load_news, load_pools
from tests.cli import vaultbot

HEADER = "timestamp,pool,apy,apy_base,apy_reward,tvl_usd"
GOOD_ROWS = [
    "2024-01-01T00:00:00Z,p1,4.0,3.5,0.5,1000000",
    "2024-01-02T00:00:00Z,p1,4.2,3.6,0.6,1100000",
    "2024-01-01T00:00:00Z,p2,6.0,6.0,0.0,500000",
]


def write_csv(tmp_path, rows, header=HEADER, name="history.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_clean_csv_loads_canonical_sorted_without_repairs(tmp_path):
    frame, report = load_market_history(write_csv(tmp_path, GOOD_ROWS), strict=True)
    assert not report
    assert list(frame.columns) == ["timestamp", "pool", "apy", "apy_base", "apy_reward", "tvl_usd"]
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert list(frame["pool"]) == ["p1", "p1", "p2"]
    assert frame["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02", "2024-01-01"]
    assert frame["tvl_usd"].tolist() == [1_000_000.0, 1_100_000.0, 500_000.0]


def test_parquet_gives_the_same_frame_as_csv(tmp_path):
    from_csv, _ = load_market_history(write_csv(tmp_path, GOOD_ROWS))
    parquet = tmp_path / "history.parquet"
    pd.read_csv(write_csv(tmp_path, GOOD_ROWS, name="again.csv")).to_parquet(parquet)
    from_parquet, report = load_market_history(parquet, strict=True)
    assert not report
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_optional_columns_are_kept_and_extra_columns_dropped(tmp_path):
    rows = ["2024-01-01,p1,4.0,4.0,0.0,100,0.999,0.5,x"]
    frame, _ = load_market_history(write_csv(tmp_path, rows, HEADER + ",price,utilization,comment"), strict=True)
    assert list(frame.columns)[-2:] == ["price", "utilization"]
    assert (frame["price"].iloc[0], frame["utilization"].iloc[0]) == (0.999, 0.5)


# (rows, line of the bad record, column, words of the message); these raise whatever the strict flag.
ALWAYS_RAISES = {
    "unparseable timestamp": (GOOD_ROWS[:2] + ["yesterday,p2,6.0,6.0,0.0,500000"], 4, "timestamp", "unparseable"),
    "text in a number column": (["2024-01-01,p1,4.0,3.5,0.5,lots"] + GOOD_ROWS[1:], 2, "tvl_usd", "expected a number"),
    "same pool and day, different values": (
        GOOD_ROWS + ["2024-01-02T00:00:00Z,p1,9.9,9.9,0.0,1100000"], 3, "timestamp", "also line 5"),
}
# These raise with strict=True and are repaired (or dropped) with strict=False.
STRICT_RAISES = {
    "missing apy": (["2024-01-01,p1,,,,100"] + GOOD_ROWS[1:], 2, "apy", "missing value"),
    "missing tvl": (GOOD_ROWS[:1] + ["2024-01-02,p1,4.2,3.6,0.6,"] + GOOD_ROWS[2:], 3, "tvl_usd", "missing value"),
    "absurd apy": (GOOD_ROWS[:2] + ["2024-01-01,p2,25000,25000,0,500000"], 4, "apy", "outside [-100, 10000]"),
    "apy below -100": (GOOD_ROWS[:2] + ["2024-01-01,p2,-150,-150,0,500000"], 4, "apy", "outside"),
    "negative tvl": (GOOD_ROWS[:1] + ["2024-01-02,p1,4.2,3.6,0.6,-5"] + GOOD_ROWS[2:], 3, "tvl_usd",
                     "outside [0, inf)"),
    # a bound of inf must not let inf through: one such TVL makes every share of the total zero
    "infinite tvl": (GOOD_ROWS[:1] + ["2024-01-02,p1,4.2,3.6,0.6,inf"] + GOOD_ROWS[2:], 3, "tvl_usd",
                     "inf is outside [0, inf)"),
    "infinite apy_base": (GOOD_ROWS[:2] + ["2024-01-01,p2,6.0,inf,-inf,500000"], 4, "apy_base",
                          "inf is outside [-100, 10000]"),
    "exact duplicate": (GOOD_ROWS + GOOD_ROWS[:1], 5, "pool", "exact duplicate"),
    "timestamps going backwards": ([GOOD_ROWS[1], GOOD_ROWS[0], GOOD_ROWS[2]], 3, "timestamp",
                                   "earlier than the previous"),
    # a glitch of another era would stretch the daily grid over millennia (16 GB at the year 9999)
    "year 9999": (GOOD_ROWS + ["9999-06-01T00:00:00Z,p2,6.0,6.0,0.0,500000"], 5, "timestamp",
                  "is not between 2009-01-03 and 2100-01-01"),
    "year 1500": (["1500-06-01T00:00:00Z,p2,6.0,6.0,0.0,500000", *GOOD_ROWS], 2, "timestamp",
                  "is not between 2009-01-03 and 2100-01-01"),
}


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", ALWAYS_RAISES)
def test_unrepairable_files_raise_naming_file_line_and_column(tmp_path, case, strict):
    rows, line, column, words = ALWAYS_RAISES[case]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as caught:
        load_market_history(path, strict=strict)
    error = caught.value
    assert (error.where, error.row, error.field) == (str(path), f"line {line}", column)
    assert str(path) in str(error) and f"line {line}" in str(error) and words in str(error)


@pytest.mark.parametrize("case", STRICT_RAISES)
def test_strict_mode_raises_naming_file_line_and_column(tmp_path, case):
    rows, line, column, words = STRICT_RAISES[case]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as caught:
        load_market_history(path, strict=True)
    assert (caught.value.where, caught.value.row, caught.value.field) == (str(path), f"line {line}", column)
    assert words in str(caught.value)


@pytest.mark.parametrize("case", STRICT_RAISES)
def test_lenient_mode_repairs_and_reports_the_lines(tmp_path, case):
    rows, line, column, _ = STRICT_RAISES[case]
    frame, report = load_market_history(write_csv(tmp_path, rows), strict=False)
    assert report.total == 1
    assert report.repairs[0].rows == (f"line {line}",) and report.repairs[0].field == column
    assert frame.equals(frame.sort_values(["pool", "timestamp"], ignore_index=True))
    assert not frame.duplicated(["pool", "timestamp"]).any()
    assert frame[["apy", "tvl_usd"]].notna().all().all() and frame["apy"].between(-100, 10_000).all()
    if case == "timestamps going backwards":  # nothing lost, only reordered
        assert len(frame) == 3
    else:  # the bad record is dropped, the clean ones stay
        assert len(frame) == len(rows) - 1


def test_missing_apy_is_filled_from_its_parts_and_reported(tmp_path):
    rows = ["2024-01-01,p1,,3.5,0.5,100"] + GOOD_ROWS[1:]
    frame, report = load_market_history(write_csv(tmp_path, rows))
    assert frame["apy"].iloc[0] == 3.5 + 0.5
    assert report.counts() == {"filled missing apy from apy = apy_base + apy_reward": 1}
    with pytest.raises(DataError, match="line 2, field 'apy'"):
        load_market_history(write_csv(tmp_path, rows), strict=True)


def test_missing_reward_is_derived_leniently_and_left_missing_strictly(tmp_path):
    rows = ["2024-01-01,p1,4.0,3.5,,100"]
    lenient, report = load_market_history(write_csv(tmp_path, rows))
    strict, strict_report = load_market_history(write_csv(tmp_path, rows), strict=True)
    assert lenient["apy_reward"].iloc[0] == pytest.approx(0.5) and report.total == 1
    assert math.isnan(strict["apy_reward"].iloc[0]) and not strict_report


def test_missing_column_is_named(tmp_path):
    path = write_csv(tmp_path, ["2024-01-01,p1,4.0,3.5,100"], header="timestamp,pool,apy,apy_base,tvl_usd")
    with pytest.raises(DataError, match="field 'apy_reward': missing column") as caught:
        load_market_history(path)
    assert caught.value.where == str(path)


@pytest.mark.parametrize(("extra", "value", "message"), [
    ("price", "0", "line 2, field 'price': 0.0 is outside (0, inf)"),
    ("price", "inf", "line 2, field 'price': inf is outside (0, inf)"),
    ("utilization", "-inf", "line 2, field 'utilization': -inf is outside [0, 1]"),
    ("utilization", "1.5", "line 2, field 'utilization': 1.5 is outside [0, 1]"),
])
def test_absurd_optional_values_are_named(tmp_path, extra, value, message):
    path = write_csv(tmp_path, [f"2024-01-01,p1,4.0,3.5,0.5,100,{value}"], header=f"{HEADER},{extra}")
    with pytest.raises(DataError) as caught:
        load_market_history(path, strict=True)
    assert message in str(caught.value)


def test_line_numbers_count_blank_lines_and_multi_line_fields(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(f'{HEADER},note\n{GOOD_ROWS[0]},"two\nlines"\n\n2024-01-02,p1,4.2,3.6,0.6,-1,x\n')
    with pytest.raises(DataError, match="line 5, field 'tvl_usd'"):
        load_market_history(path, strict=True)


def test_unreadable_and_unsupported_files_are_named(tmp_path):
    binary = tmp_path / "history.csv"
    binary.write_bytes(b"timestamp,pool\n\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read file") as caught:
        load_market_history(binary)
    assert caught.value.where == str(binary)
    with pytest.raises(DataError, match=r"unsupported file type '.txt' \(expected .csv, .parquet, .json or a dir"):
        load_market_history(tmp_path / "history.txt")
    # news reads feeds, not JSON: the error names what it reads
    with pytest.raises(DataError, match=r"unsupported file type '.json' \(expected .csv, .parquet, .xml, .rss, "
                                        r".atom or a directory\)"):
        load_news(tmp_path / "pools.json")


@contextmanager
def unblocked_fifo(path):
    """A FIFO at `path`; should anything open it to read, a writer comes and goes, so that reader sees an empty
    file instead of hanging the test run (the loaders must refuse it before opening it)."""
    os.mkfifo(path)
    done = threading.Event()

    def writer():
        while not done.is_set():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # fails (ENXIO) while no reader waits
            except OSError:
                done.wait(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        thread.join()


LOADERS = [(load_market_history, "history.csv"), (load_market_history, "pool.json"),
           (load_news, "news.xml"), (load_news, "news.csv"), (load_pools, "pools.json")]


@pytest.mark.parametrize(("load", "name"), LOADERS)
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, load, name):
    with unblocked_fifo(tmp_path / name) as fifo, \
            pytest.raises(DataError, match="it is a FIFO, socket or device, not a regular file") as caught:
        load(fifo)
    assert caught.value.where == str(fifo)


def test_a_directory_where_a_file_belongs_is_named(tmp_path):
    (tmp_path / "pools.json").mkdir()  # market history and news read a directory as one of files; pools never
    with pytest.raises(DataError, match=rf"{tmp_path / 'pools.json'}: cannot read file: it is a directory, not a "
                                        "regular file"):
        load_pools(tmp_path / "pools.json")


@pytest.mark.parametrize("command", [["backtest", "run", "--start", "2024-01-01", "--end", "2024-02-01"],
                                     ["model", "train"]])
def test_cli_refuses_a_fifo_as_data_in_one_line(tmp_path, command):
    with unblocked_fifo(tmp_path / "history.csv") as fifo:
        result = vaultbot(*command, "--data", str(fifo))
    assert (result.exit_code, result.exception.__class__) == (1, SystemExit), result.output
    assert f"{fifo}: cannot read file: it is a FIFO, socket or device, not a regular file" in result.output


def chart_payload(points):
    return {"status": "success", "data": points}


def test_directory_of_chart_json_files_is_one_history(tmp_path):
    (tmp_path / "pool-b.json").write_text(json.dumps(chart_payload([
        {"timestamp": "2022-02-10T23:01:05.612Z", "tvlUsd": 2.0e6, "apy": 3.0, "apyBase": 3.0, "apyReward": None},
        {"timestamp": "2022-02-09T23:01:05.612Z", "tvlUsd": 1.0e6, "apy": 2.5, "apyBase": 2.0, "apyReward": 0.5},
    ])))
    (tmp_path / "pool-a.json").write_text(json.dumps(chart_payload([
        {"timestamp": "2022-02-09T22:00:00.000Z", "tvlUsd": 5.0e7, "apy": 4.0, "apyBase": None, "apyReward": None,
         "il7d": None, "apyBase7d": None},
    ])))
    (tmp_path / "notes.txt").write_text("ignored")
    frame, report = load_market_history(tmp_path)
    assert frame["pool"].tolist() == ["pool-a", "pool-b", "pool-b"]
    assert frame["apy"].tolist() == [4.0, 2.5, 3.0]
    assert frame.loc[2, "apy_reward"] == 0.0  # derived: 3.0 - 3.0
    assert math.isnan(frame.loc[0, "apy_base"])  # both parts unknown: not guessed
    assert report.counts() == {"filled missing apy_reward from apy = apy_base + apy_reward": 1,
                               "sorted records by (pool, timestamp)": 1}
    assert {repair.where for repair in report.repairs} == {str(tmp_path / "pool-b.json")}


@pytest.mark.parametrize(("content", "row", "field", "words"), [
    ('{"status": "success", "data": [\n  {"timestamp": 1,}\n]}', "line 2", None, "malformed JSON"),
    ('{"status": "error", "data": []}', None, "status", "status is 'error', expected 'success'"),
    ('{"status": "success"}', None, "data", "missing key"),
    ('{"status": "success", "data": [{"timestamp": "2022-02-09", "tvlUsd": "1e6", "apy": 1}]}',
     "data[0]", "tvlUsd", "expected a number, got '1e6'"),
    ('{"status": "success", "data": [{"timestamp": "2022-02-09", "apy": 1}]}', "data[0]", "tvlUsd", "missing key"),
    ('{"status": "success", "data": [{"timestamp": "2022-02-09", "tvlUsd": 1, "apy": 12345}]}',
     "data[0]", "apy", "12345.0 is outside"),
])
def test_bad_chart_json_file_is_named(tmp_path, content, row, field, words):
    (tmp_path / "good.json").write_text(json.dumps(chart_payload([])))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(DataError) as caught:
        load_market_history(tmp_path, strict=True)
    assert (caught.value.where, caught.value.row, caught.value.field) == (str(bad), row, field)
    assert words in str(caught.value)


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no .json files"):
        load_market_history(tmp_path)


def test_a_csv_number_of_400_digits_is_out_of_range_never_an_overflow(tmp_path):
    rows = [*GOOD_ROWS, "2024-01-03T00:00:00Z,p1,4.2,3.6,0.6," + "9" * 400]
    frame, report = load_market_history(write_csv(tmp_path, rows))
    assert len(frame) == 3 and report.counts() == {"dropped record: tvl_usd outside [0, inf)": 1}
