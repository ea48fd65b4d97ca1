"""The DeFiLlama parsers on payloads shaped like the real API (see ../shared/data/README.md), and on
malformed ones."""

import copy

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategy.data import DataError, checks
from strategy.data.defillama import chart_history, parse_chart, parse_coin_chart, parse_pools

POOLS = {
    "status": "success",
    "data": [
        {"chain": "Ethereum", "project": "lido", "symbol": "STETH", "tvlUsd": 23_456_789_012, "apyBase": 3.1,
         "apyReward": None, "apy": 3.1, "rewardTokens": None, "pool": "747c1d2a-c668-4682-b9f9-296708a3dd90",
         "apyPct1D": 0.01, "apyPct7D": -0.2, "apyPct30D": 0.1, "stablecoin": False, "ilRisk": "no",
         "exposure": "single", "predictions": {"predictedClass": "Stable/Up"}, "poolMeta": None,
         "mu": 4.2, "sigma": 0.05, "count": 900, "outlier": False,
         "underlyingTokens": ["0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84"], "il7d": None, "apyBase7d": None,
         "apyMean30d": 3.2, "volumeUsd1d": None, "volumeUsd7d": None, "apyBaseInception": None},
        {"chain": "Arbitrum", "project": "aave-v3", "symbol": "USDC", "tvlUsd": 1.2e9, "apyBase": 3.9,
         "apyReward": 0.2, "apy": 4.1, "rewardTokens": ["0x912CE59144191C1204E64559FE8253a0e49E6548"],
         "pool": "d9fa8e14-0447-4207-9ae8-7810199dfa1f", "stablecoin": True, "ilRisk": "no", "exposure": "single",
         "poolMeta": None, "underlyingTokens": ["0xaf88d065e77c8cC2239327C5EDb3A432268e5831"], "apyMean30d": 4.0},
        {"chain": "Ethereum", "project": "uniswap-v3", "symbol": "USDC-WETH", "tvlUsd": 1.5e8, "apyBase": 12.5,
         "apyReward": None, "apy": 12.5, "rewardTokens": None, "pool": "pool-3", "stablecoin": False,
         "ilRisk": "yes", "exposure": "multi", "poolMeta": "0.05%", "apyMean30d": 14.1,
         "underlyingTokens": ["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                              "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"]},
    ],
}


def test_parse_pools_one_canonical_row_per_pool():
    frame = parse_pools(POOLS, "2024-05-01T12:00:00Z", strict=True)
    assert frame["pool"].tolist() == ["747c1d2a-c668-4682-b9f9-296708a3dd90", "d9fa8e14-0447-4207-9ae8-7810199dfa1f",
                                      "pool-3"]
    assert (frame["timestamp"] == pd.Timestamp("2024-05-01T12:00:00Z")).all()
    aave = frame.set_index("pool").loc["d9fa8e14-0447-4207-9ae8-7810199dfa1f"]
    assert (aave["chain"], aave["project"], aave["symbol"]) == ("Arbitrum", "aave-v3", "USDC")
    assert (aave["tvl_usd"], aave["apy"], aave["apy_base"], aave["apy_reward"], aave["apy_mean_30d"]) == (
        1.2e9, 4.1, 3.9, 0.2, 4.0)
    assert aave["underlying_tokens"] == ["0xaf88d065e77c8cC2239327C5EDb3A432268e5831"]
    lido = frame.iloc[0]
    assert lido["reward_tokens"] == [] and pd.isna(lido["pool_meta"]) and pd.isna(lido["apy_reward"])
    assert frame["underlying_tokens"].iloc[2] == POOLS["data"][2]["underlyingTokens"]
    assert frame["stablecoin"].tolist() == [False, True, False]


def test_parse_pools_defaults_the_timestamp_to_now():
    before = pd.Timestamp.now(tz="UTC")
    frame = parse_pools(POOLS)
    assert before <= frame["timestamp"].iloc[0] <= pd.Timestamp.now(tz="UTC")


def test_parse_pools_drops_junk_pools_leniently_and_names_them_strictly():
    payload = copy.deepcopy(POOLS)
    payload["data"].append({"pool": "junk", "chain": "BSC", "project": "x", "symbol": "X", "tvlUsd": 10.0,
                            "apy": 3.5e6, "apyBase": None, "apyReward": None})
    frame = parse_pools(payload, "2024-05-01")
    assert "junk" not in set(frame["pool"]) and len(frame) == 3
    with pytest.raises(DataError, match=r"DeFiLlama /pools, data\[3\], field 'apy': 3500000.0 is outside"):
        parse_pools(payload, "2024-05-01", strict=True)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p.update(status="error"), "field 'status': status is 'error', expected 'success'"),
    (lambda p: p.pop("data"), "field 'data': missing key"),
    (lambda p: p.update(data={"pool": "x"}), "field 'data': expected a list, got dict"),
    (lambda p: p["data"].append("pool"), r"data[3]: expected an object, got str"),
    (lambda p: p["data"][1].pop("project"), "data[1], field 'project': missing key"),
    (lambda p: p["data"][0].update(tvlUsd="23456789012"),
     "data[0], field 'tvlUsd': expected a number, got '23456789012'"),
    (lambda p: p["data"][0].update(apy=True), "data[0], field 'apy': expected a number, got True"),
    (lambda p: p["data"][2].update(stablecoin="no"), "data[2], field 'stablecoin': expected true or false, got 'no'"),
    (lambda p: p["data"][2].update(underlyingTokens="0xabc"),
     "data[2], field 'underlyingTokens': expected a list of strings"),
])
def test_parse_pools_malformed_payloads(mutate, message):
    payload = copy.deepcopy(POOLS)
    mutate(payload)
    with pytest.raises(DataError) as caught:
        parse_pools(payload)  # malformed structure raises even when lenient
    assert message in str(caught.value)


def test_parse_pools_rejects_two_different_records_for_one_pool():
    payload = copy.deepcopy(POOLS)
    payload["data"].append(dict(payload["data"][1], apy=9.9, apyBase=9.7))
    with pytest.raises(DataError, match=r"data\[1\].*also data\[3\]"):
        parse_pools(payload)


CHART = {"status": "success", "data": [
    {"timestamp": "2022-02-09T23:01:05.612Z", "tvlUsd": 100_000_000, "apy": 2.5, "apyBase": 2.5, "apyReward": None,
     "il7d": None, "apyBase7d": None},
    {"timestamp": "2022-02-10T23:00:51.211Z", "tvlUsd": 101_500_000, "apy": 2.7, "apyBase": 2.4, "apyReward": 0.3,
     "il7d": None, "apyBase7d": None},
    {"timestamp": "2022-02-11T23:01:14.001Z", "tvlUsd": 99_000_000, "apy": None, "apyBase": 2.2, "apyReward": 0.3,
     "il7d": None, "apyBase7d": None},
]}


def test_parse_chart_gives_canonical_rows_for_the_pool():
    frame = parse_chart("d9fa8e14", CHART)
    assert list(frame.columns) == ["timestamp", "pool", "apy", "apy_base", "apy_reward", "tvl_usd"]
    assert (frame["pool"] == "d9fa8e14").all()
    assert frame["timestamp"].tolist() == [pd.Timestamp(p["timestamp"]) for p in CHART["data"]]
    assert frame["apy"].tolist() == pytest.approx([2.5, 2.7, 2.5])  # last one filled: 2.2 + 0.3
    assert frame["apy_reward"].tolist() == pytest.approx([0.0, 0.3, 0.3])
    assert frame["tvl_usd"].tolist() == [1e8, 1.015e8, 9.9e7]


def test_parse_chart_strict_names_the_missing_json_key():
    with pytest.raises(DataError, match=r"DeFiLlama /chart/p1, data\[2\], field 'apy': missing value"):
        parse_chart("p1", CHART, strict=True)


def test_parse_chart_of_a_pool_without_history_is_empty_and_typed():
    frame = parse_chart("p1", {"status": "success", "data": []})
    assert frame.empty and str(frame["timestamp"].dtype) == "datetime64[us, UTC]" and frame["apy"].dtype == float


COINS = {"coins": {
    "ethereum:0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48": {
        "symbol": "USDC", "decimals": 6, "confidence": 0.99,
        "prices": [{"timestamp": 1672531200, "price": 1.0001}, {"timestamp": 1672617600, "price": 0.9998}]},
    "ethereum:0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2": {
        "symbol": "WETH", "decimals": 18, "confidence": 0.99,
        "prices": [{"timestamp": 1672531200, "price": 1196.7}]},
}}


def test_parse_coin_chart_rows():
    frame = parse_coin_chart(COINS, strict=True)
    assert list(frame.columns) == ["timestamp", "coin", "symbol", "price"]
    assert frame["symbol"].tolist() == ["USDC", "USDC", "WETH"]
    assert frame["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2023-01-01", "2023-01-02", "2023-01-01"]
    assert frame["price"].tolist() == [1.0001, 0.9998, 1196.7]


@pytest.mark.parametrize(("payload", "message"), [
    ({"status": "success"}, "field 'coins': expected a JSON object with a 'coins' object"),
    ({"coins": {"ethereum:0x1": []}}, "coins['ethereum:0x1']: expected an object"),
    ({"coins": {"ethereum:0x1": {"prices": []}}}, "coins['ethereum:0x1'], field 'symbol': expected a string"),
    ({"coins": {"ethereum:0x1": {"symbol": "X", "prices": None}}},
     "field 'coins['ethereum:0x1'].prices': expected a list"),
    ({"coins": {"ethereum:0x1": {"symbol": "X", "prices": [{"timestamp": 1672531200, "price": "1"}]}}},
     "coins['ethereum:0x1'].prices[0], field 'price': expected a number, got '1'"),
    ({"coins": {"ethereum:0x1": {"symbol": "X", "prices": [{"timestamp": 1672531200, "price": 0}]}}},
     "coins['ethereum:0x1'].prices[0], field 'price': 0.0 is outside (0, inf)"),
    ({"coins": {"ethereum:0x1": {"symbol": "X", "prices": [{"timestamp": 1672531200, "price": 1e999}]}}},
     "coins['ethereum:0x1'].prices[0], field 'price': inf is outside (0, inf)"),  # JSON's 1e999 reads as inf
])
def test_parse_coin_chart_malformed(payload, message):
    with pytest.raises(DataError) as caught:
        parse_coin_chart(payload, strict=True)
    assert message in str(caught.value)


_DAY = 86_400
_RECORD = st.fixed_dictionaries(
    {"timestamp": st.integers(1_700_000_000 // _DAY, 1_700_000_000 // _DAY + 20).map(lambda day: day * _DAY),
     "tvlUsd": st.one_of(st.none(), st.sampled_from([0, 1.5e6, 2e6, -1.0])),
     "apy": st.one_of(st.none(), st.sampled_from([3.0, 4.25, 1e7])),
     "apyBase": st.one_of(st.none(), st.sampled_from([3.0, 4.25]))})
_SPELLINGS = st.sampled_from([lambda seconds: seconds,
                              lambda seconds: pd.Timestamp(seconds, unit="s").strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                              lambda seconds: f" {pd.Timestamp(seconds, unit='s').isoformat()}Z\t"])


@settings(max_examples=300)
@given(st.lists(st.tuples(_RECORD, _SPELLINGS), max_size=12, unique_by=lambda pair: pair[0]["timestamp"]),
       st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_chart_parsing_in_one_pass_gives_what_the_general_checks_give(drawn, one_spelling, in_order, repeated,
                                                                      strict):
    """The checker's one-pass paths (all timestamps text or all integers, a column all text, keys that never
    repeat, records already in order) give the frame, the repairs and the errors of its general checks."""
    spell = drawn[0][1] if drawn and one_spelling else None
    drawn = sorted(drawn, key=lambda pair: pair[0]["timestamp"]) if in_order else drawn
    drawn = [*drawn, drawn[0]] if drawn and repeated else drawn  # an exact repeat
    records = [dict(record, timestamp=(spell or spelling)(record["timestamp"])) for record, spelling in drawn]
    payload = {"status": "success", "data": records}

    def parsed() -> tuple[str, object, object]:
        try:
            validated = chart_history("pool-a", copy.deepcopy(payload), strict=strict)
        except DataError as error:
            return "error", str(error), None
        return "frame", validated.frame, validated.report.repairs

    one_pass = parsed()
    with pytest.MonkeyPatch.context() as general:
        general.setattr(checks, "_kind", lambda values: "mixed")
        general.setattr(checks.RecordChecker, "_unique", lambda self, keys: False)
        general.setattr(checks.RecordChecker, "_sorted_by", lambda self, group, order: False)
        reference = parsed()
    assert one_pass[0] == reference[0]
    if one_pass[0] == "frame":
        pd.testing.assert_frame_equal(one_pass[1], reference[1], check_exact=True)
        assert one_pass[2] == reference[2]
    else:
        assert one_pass[1] == reference[1]


@given(st.lists(st.text(alphabet=" \t\n\x1c\u3000\xa0ab", max_size=4), max_size=8))
def test_text_cleaned_in_one_pass_as_the_general_check_cleans_it(texts):
    """A column all text is stripped, its empty strings missing, as the general check does."""
    def cleaned() -> pd.Series:
        checker = checks.RecordChecker(pd.DataFrame({"name": pd.Series(texts, dtype=object)}), where="t",
                                       strict=False)
        checker.clean_text("name")
        return checker.frame["name"]

    one_pass = cleaned()
    with pytest.MonkeyPatch.context() as general:
        general.setattr(checks, "_kind", lambda values: "mixed")
        reference = cleaned()
    pd.testing.assert_series_equal(one_pass, reference, check_exact=True)


def test_an_integer_past_any_float_is_out_of_range_never_an_overflow() -> None:
    """JSON integers have no size: one of 400 digits is infinite, so out of every range (dropped, or named in
    strict mode); as a timestamp it is no time."""
    records = [{"timestamp": "2024-06-01T00:00:00.000Z", "tvlUsd": 10**400, "apy": 3.0},
               {"timestamp": "2024-06-02T00:00:00.000Z", "tvlUsd": 5.0, "apy": -(10**400)},
               {"timestamp": "2024-06-03T00:00:00.000Z", "tvlUsd": 5.0, "apy": 3.0}]
    frame = parse_chart("pool-a", {"status": "success", "data": records})
    assert frame["timestamp"].dt.day.tolist() == [3]
    with pytest.raises(DataError, match=r"data\[1\], field 'apy': -inf is outside"):
        parse_chart("pool-a", {"status": "success", "data": records}, strict=True)
    with pytest.raises(DataError, match="unparseable timestamp"):
        parse_chart("pool-a", {"status": "success", "data": [{"timestamp": 10**400, "tvlUsd": 5.0, "apy": 3.0}]})
