"""`strategy.market_supply`: the keeper's supply of a decision day, from its inputs' last week, is the backtest's
of the same day, from the whole history, in base units of the vault's asset."""

import numpy as np
import pandas as pd
import pytest

from strategy.data.daily import DailyPanel
from strategy.data.schema import POOL, TIMESTAMP
from strategy.market_supply import SUPPLY_MEDIAN_DAYS, AssetUnit, supplies, supply_in_asset, supply_on

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
    for day in DAYS[SUPPLY_MEDIAN_DAYS:]:
        assert supply_on(data, META, USDC, day) == supplies(whole.loc[day])


def test_a_supply_in_usd_is_counted_in_the_vaults_asset() -> None:
    data = history()
    day = DAYS[-1]
    recent = data[(data[POOL] == "usdc") & (data[TIMESTAMP] > day - pd.Timedelta(days=SUPPLY_MEDIAN_DAYS))]
    usd = float((recent["tvl_usd"] / (1 - recent["utilization"])).median())
    # 0.98 USD a USDC: the same dollars are more USDC
    assert supply_on(data, META, USDC, day)["usdc"] == pytest.approx(usd / 0.98 * UNIT, rel=1e-12)


def test_a_day_the_inputs_do_not_reach_has_no_supply_and_an_unknown_one_is_left_out() -> None:
    data = history()
    assert supply_on(data, META, USDC, DAYS[-1] + pd.Timedelta(days=1)) == {}
    assert supply_on(data.iloc[:0], META, USDC, DAYS[-1]) == {}
    unknown = data.assign(tvl_usd=np.where(data[POOL] == "usdt", np.nan, data["tvl_usd"]))
    assert set(supply_on(unknown, META, USDC, DAYS[-1])) == {"usdc"}
