"""`strategy.market_supply`: the keeper's depth of a decision day (its supply from its inputs' last week, its rate
curve's elasticity) is the backtest's of the same day, from the whole history, in base units of the vault's
asset; the elasticity and the dilution it gives; a depth taken besides the vault where the data holds it."""

import numpy as np
import pandas as pd
import pytest

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP
from strategy.market_supply import (
    MAX_RATE_ELASTICITY,
    SUPPLY_MEDIAN_DAYS,
    AssetUnit,
    MarketDepth,
    besides_vault,
    depth_on,
    depths,
    dilution,
    rate_elasticity,
    supply_in_asset,
)

DAYS = pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC").astype("datetime64[us, UTC]")
UNIT = 10**6
USDC = AssetUnit("USDC", 6)
META = pd.DataFrame({POOL: ["usdc", "usdt"], "symbol": ["USDC", "USDT"]})


def history() -> pd.DataFrame:
    """A USDC market whose liquidity wanders, priced 0.98 USD on its last days (a depeg), and a USDT market
    with a gap and no utilization."""
    rng = np.random.default_rng(3)
    rows = []
    for index, day in enumerate(DAYS):
        rows.append({TIMESTAMP: day, POOL: "usdc", "tvl_usd": float(rng.uniform(1e6, 3e6)),
                     "utilization": float(rng.uniform(0.5, 0.9)), "price": 0.98 if index > 15 else 1.0})
        if index % 4 != 1:
            rows.append({TIMESTAMP: day, POOL: "usdt", "tvl_usd": float(rng.uniform(4e6, 5e6)),
                         "utilization": np.nan, "price": 1.0})
    return pd.DataFrame(rows).sort_values([POOL, TIMESTAMP], ignore_index=True)


def test_the_keepers_supply_of_a_day_is_the_backtests_of_that_day_to_the_unit() -> None:
    data = history()
    whole = supply_in_asset(DailyPanel(data), META, "USDC", UNIT)
    elasticity = rate_elasticity(DailyPanel(data))
    for day in DAYS[SUPPLY_MEDIAN_DAYS:]:
        assert depth_on(data, META, USDC, day) == depths(whole.loc[day], elasticity.loc[day])


def test_a_supply_in_usd_is_counted_in_the_vaults_asset() -> None:
    data = history()
    day = DAYS[-1]
    recent = data[(data[POOL] == "usdc") & (data[TIMESTAMP] > day - pd.Timedelta(days=SUPPLY_MEDIAN_DAYS))]
    usd = float((recent["tvl_usd"] / (1 - recent["utilization"])).median())
    # 0.98 USD a USDC: the same dollars are more USDC
    assert depth_on(data, META, USDC, day)["usdc"].supply == pytest.approx(usd / 0.98 * UNIT, rel=1e-12)


def test_a_day_the_inputs_do_not_reach_has_no_supply_and_an_unknown_one_is_left_out() -> None:
    data = history()
    assert depth_on(data, META, USDC, DAYS[-1] + pd.Timedelta(days=1)) == {}
    assert depth_on(data.iloc[:0], META, USDC, DAYS[-1]) == {}
    unknown = data.assign(tvl_usd=np.where(data[POOL] == "usdt", np.nan, data["tvl_usd"]))
    assert set(depth_on(unknown, META, USDC, DAYS[-1])) == {"usdc"}


def test_the_elasticity_is_the_rate_curves_slope_times_utilization_over_the_apy_from_one_up() -> None:
    # APY = 10·u²: borrow rate 10·u, d ln APY / d ln u = 2, read by a line through u moving by ±0.02
    days = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC").astype("datetime64[us, UTC]")
    u = 0.5 + 0.02 * np.sin(np.arange(len(days)) / 5)
    rows = pd.DataFrame({TIMESTAMP: days, POOL: "a", "apy": 10 * u**2, "utilization": u, "tvl_usd": 1e6})
    flat = rows.assign(pool="b", utilization=0.5, apy=2.5)  # utilization that never moves: no slope
    steep = rows.assign(pool="c", apy=np.exp(80 * u))  # d ln APY / d ln u = 80·u = 40: capped
    elasticity = rate_elasticity(DailyPanel(pd.concat([rows, flat, steep], ignore_index=True)))
    last = elasticity.iloc[-1]
    assert last["a"] == pytest.approx(2.0, rel=0.05) and last["b"] == 1.0 and last["c"] == MAX_RATE_ELASTICITY
    assert (elasticity >= 1).all().all() and elasticity.iloc[0]["a"] == 1.0  # too few days for a slope yet


def test_the_dilution_is_s_over_s_plus_x_at_an_elasticity_of_one_and_never_below_zero() -> None:
    positions, supply = np.array([1e6, 1e6, 0.0, 1e6]), np.array([3e6, 3e6, 3e6, np.nan])
    assert dilution(positions, supply).tolist() == [0.75, 0.75, 1.0, 1.0]
    assert dilution(positions, supply, np.array([3.0, 5.0, 3.0, 3.0])).tolist() == [0.25, 0.0, 1.0, 1.0]


def test_a_supply_the_data_holds_the_vault_in_is_taken_besides_its_positions() -> None:
    recorded = {"a": MarketDepth(4_600_000, 2.5), "b": MarketDepth(3_000_000, 1.0), "c": MarketDepth(500_000, 4.0),
                "d": MarketDepth(700_000, 1.5)}
    positions = {"a": 1_000_000, "c": 500_000, "d": 900_000, "e": 5}
    # the others' supply, at the same elasticity, and the position the recorded rate is at; a market the vault
    # is not in, or whose recorded supply could not hold its position (a day before its deposit), as recorded
    assert besides_vault(recorded, positions) == {"a": MarketDepth(3_600_000, 2.5, 1_000_000),
                                                  "b": recorded["b"], "c": recorded["c"], "d": recorded["d"]}
    assert besides_vault(recorded, {}) == recorded
