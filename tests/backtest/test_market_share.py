"""`backtest.market_share`: a market's supply from its available liquidity and utilization, and the largest part
of it a strategy's positions were."""

import numpy as np
import pandas as pd
import pytest

from backtest.market_share import largest_share, market_prices, market_supply
from strategy.data.schema import POOL, TIMESTAMP
from strategy.market_supply import dilution

DAYS = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")


def history(rows: list[tuple[int, str, float, float | None, float]]) -> pd.DataFrame:
    return pd.DataFrame([{TIMESTAMP: DAYS[day], POOL: pool, "tvl_usd": tvl, "utilization": utilization,
                          "price": price} for day, pool, tvl, utilization, price in rows])


def test_the_supply_is_the_available_liquidity_over_what_is_not_lent_or_the_liquidity_without_utilization():
    supply = market_supply(history([(0, "a", 200.0, 0.8, 1.0), (0, "b", 500.0, None, 1.0),
                                    (1, "a", 100.0, 1.0, 1.0)]))
    assert supply.loc[DAYS[0], "a"] == pytest.approx(1000.0)  # 200 left of 1,000 supplied at 80 % lent
    assert supply.loc[DAYS[0], "b"] == 500.0  # no utilization: the liquidity, less than the supply
    # all of it lent: that day's estimate is no number, and the days before it stand
    assert supply.loc[DAYS[1], "a"] == pytest.approx(1000.0)
    assert market_supply(history([(0, "a", 200.0, 0.8, 1.0)]).drop(columns="utilization")).loc[DAYS[0], "a"] == 200


def test_a_day_whose_liquidity_and_utilization_disagree_is_outvoted_by_the_days_before_it():
    # Aave v3 USDC on 2023-07-30, rounded: 196k left at 95.7 % lent says 4.6 M supplied, between 282 M and 224 M
    supply = market_supply(history([(0, "a", 30.5e6, 0.8917, 1.0), (1, "a", 195_802.0, 0.9575, 1.0),
                                    (2, "a", 18.4e6, 0.9177, 1.0)]))["a"]
    assert supply[DAYS[1]] == pytest.approx((30.5e6 / 0.1083 + 195_802 / 0.0425) / 2)  # two days: their mean
    assert supply[DAYS[2]] == pytest.approx(18.4e6 / (1 - 0.9177))  # the median of three: not the 4.6 M


def test_the_largest_share_is_the_position_over_the_supply_with_it_valued_at_the_assets_price():
    data = history([(0, "a", 200.0, 0.8, 1.0), (1, "a", 200.0, 0.8, 1.0), (0, "b", 900.0, 0.0, 0.5),
                    (1, "b", 900.0, 0.0, 0.5)])
    positions = pd.DataFrame({"a": [100.0, 250.0], "b": [600.0, 0.0], "c": [0.0, 0.0]}, index=DAYS[:2])
    share = largest_share(positions, market_supply(data), market_prices(data))
    # a: 250 beside 1,000 is 20 %; b: 600 of an asset at 0.5 USD is 300 beside 900, 25 %
    assert share is not None and (share.pool, share.day, share.share) == ("b", DAYS[0], pytest.approx(0.25))
    assert share.as_dict("b USDC") == {"pool": "b", "label": "b USDC", "day": "2024-01-01",
                                       "share": pytest.approx(0.25)}
    unpriced = largest_share(positions, market_supply(data), None)  # the asset taken for a dollar: 600 of 1,500
    assert unpriced is not None and unpriced.share == pytest.approx(0.4)


def test_no_share_without_a_position_or_without_a_known_supply():
    data = history([(0, "a", 200.0, 0.8, 1.0)])
    assert largest_share(pd.DataFrame({"a": [0.0]}, index=DAYS[:1]), market_supply(data), None) is None
    assert largest_share(pd.DataFrame({"z": [5.0]}, index=DAYS[:1]), market_supply(data), None) is None


def test_a_position_dilutes_a_markets_rate_by_its_supply_over_the_supply_with_it() -> None:
    factor = dilution(np.array([100.0, 0.0, 50.0, 10.0]), np.array([300.0, 300.0, np.nan, 0.0]))
    # 100 beside 300; nothing held; the supply unknown (not diluted); a market with nothing else in it (all ours,
    # and the borrowers of a supply of nothing pay nothing)
    assert factor.tolist() == [0.75, 1.0, 1.0, 0.0]
