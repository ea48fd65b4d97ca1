"""Coin prices joined into a market history: one underlying token per pool, the latest price at or before each
row, never a later one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.data.prices import coin_id, pool_coins, with_prices

T0 = pd.Timestamp("2024-03-01 23:01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def meta() -> pd.DataFrame:
    return pd.DataFrame({"pool": ["usdc-pool", "pair-pool", "avax-pool"],
                         "chain": ["Ethereum", "Ethereum", "Avalanche"],
                         "underlying_tokens": [[USDC], [USDC, "0x" + "11" * 20], ["0x" + "22" * 20]]})


def history(pool: str, times: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": times, "pool": pool, "apy": 4.0, "tvl_usd": 1e6})


def test_coin_ids_follow_defillamas_naming() -> None:
    assert coin_id("Ethereum", USDC) == "ethereum:" + USDC.lower()
    assert pool_coins(meta()) == {"usdc-pool": "ethereum:" + USDC.lower(), "avax-pool": "avax:0x" + "22" * 20}


def test_each_row_gets_the_latest_price_known_at_its_time() -> None:
    coin = "ethereum:" + USDC.lower()
    prices = pd.DataFrame({"timestamp": [T0 - 2 * HOUR, T0 + 23 * HOUR, T0 + 5 * DAY], "coin": coin,
                           "price": [0.999, 0.97, 1.0]})
    times = [T0, T0 + DAY, T0 + 2 * DAY, T0 + 4 * DAY]
    rows = pd.concat([history("usdc-pool", times), history("pair-pool", times)], ignore_index=True)
    joined = with_prices(rows, meta(), prices)
    usdc = joined[joined["pool"] == "usdc-pool"]["price"].to_numpy()
    # T0: the price 2 h before; +1 d: the one at +23 h; +2 d: still it (25 h old); +4 d: 3 days old -> none;
    # the price at +5 d is never used before it exists
    np.testing.assert_array_equal(usdc, [0.999, 0.97, 0.97, np.nan])
    assert joined[joined["pool"] == "pair-pool"]["price"].isna().all()  # two tokens: no single peg
    pd.testing.assert_frame_equal(joined.drop(columns="price"), rows)  # rows and order unchanged


def test_a_price_already_in_the_history_is_kept() -> None:
    rows = history("usdc-pool", [T0, T0 + DAY]).assign(price=[1.01, np.nan])
    prices = pd.DataFrame({"timestamp": [T0 - HOUR], "coin": "ethereum:" + USDC.lower(), "price": [0.5]})
    np.testing.assert_array_equal(with_prices(rows, meta(), prices)["price"].to_numpy(), [1.01, 0.5])
