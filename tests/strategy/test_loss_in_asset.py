"""Losses count in the vault's asset: a depeg of the asset itself costs its vault nothing, another stablecoin
falling against it does, and a rise is no loss (`strategy.data.prices.in_asset`, `strategy.targets`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategy.data.prices import in_asset
from strategy.targets import TargetParams, build_targets, loss_given_event

DAYS = pd.date_range("2023-03-08", periods=12, freq="D", tz="UTC")
# Around 11 March 2023: USDC falls to 0.88 for three days, USDT stays at a dollar, ZUSD falls on its own later.
PRICES = {
    "usdc": [1, 1, 1, 0.88, 0.90, 0.97, 1, 1, 1, 1, 1, 1],
    "usdt": [1] * 12,
    "zusd": [1, 1, 1, 1, 1, 1, 1, 0.95, 0.94, 1, 1, 1],
}


def history(prices: dict[str, list[float]] = PRICES) -> pd.DataFrame:
    rows = [{"timestamp": day, "pool": pool, "apy": 4.0, "apy_base": 4.0, "apy_reward": 0.0, "tvl_usd": 1e8,
             "price": price, "utilization": 0.8}
            for pool, path in prices.items() for day, price in zip(DAYS, path, strict=True)]
    frame = pd.DataFrame(rows)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame.sort_values(["pool", "timestamp"], ignore_index=True)


def meta(pools: list[str] | None = None) -> pd.DataFrame:
    pools = pools or list(PRICES)
    return pd.DataFrame({"pool": pools, "chain": "Ethereum", "project": "test-lend",
                         "symbol": [pool.upper() for pool in pools], "stablecoin": True,
                         "underlying_tokens": [[] for _ in pools]})


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.pivot(index="timestamp", columns="pool", values="price")


def peg_events(asset: str | None, frame: pd.DataFrame | None = None) -> pd.Series:
    targets = build_targets(frame if frame is not None else history(), meta(), TargetParams(horizon_days=3,
                                                                                            asset_symbol=asset))
    return targets["event_peg_loss"].dropna().groupby(level="pool").sum()


def test_prices_in_the_asset_put_its_own_pools_at_one_and_divide_the_others() -> None:
    relative = in_asset(wide(history()), meta(), "usdc")  # the symbol matches case-insensitively
    assert relative["usdc"].tolist() == [1.0] * 12
    np.testing.assert_allclose(relative["usdt"].iloc[3:6], [1 / 0.88, 1 / 0.90, 1 / 0.97])
    np.testing.assert_allclose(relative["zusd"].iloc[7:9], [0.95, 0.94])


def test_a_day_without_the_assets_price_is_unknown_not_a_dollar() -> None:
    prices = {**PRICES, "usdc": [1, 1, float("nan")] + [1] * 9}
    relative = in_asset(wide(history(prices)), meta(), "USDC")
    assert relative.iloc[2].isna().all()
    assert relative.drop(index=relative.index[2]).notna().all().all()


def test_without_an_asset_metadata_or_a_pool_of_it_prices_stay_in_usd() -> None:
    prices = wide(history())
    pd.testing.assert_frame_equal(in_asset(prices, meta(), None), prices)
    pd.testing.assert_frame_equal(in_asset(prices, None, "USDC"), prices)
    pd.testing.assert_frame_equal(in_asset(prices, meta(), "DAI"), prices)


def test_a_depeg_of_the_vaults_own_asset_is_no_peg_loss() -> None:
    """In USD, USDC's pool loses when entered in the three days before its fall. In USDC it never does; USDT
    rising against USDC is no loss, but USDT bought while USDC was cheap loses in USDC as USDC recovers (entered
    at 0.88, 0.90 and 0.97: a fall of more than 2 % each). ZUSD's own fall counts in both units, and in USDC
    ZUSD bought at USDC's trough loses too (1 / 0.88 falls to 1 as USDC recovers)."""
    in_usd = peg_events(None)
    assert in_usd.to_dict() == {"usdc": 3.0, "usdt": 0.0, "zusd": 3.0}
    in_usdc = peg_events("USDC")
    assert in_usdc.to_dict() == {"usdc": 0.0, "usdt": 3.0, "zusd": 4.0}
    usdt = build_targets(history(), meta(), TargetParams(horizon_days=3, asset_symbol="USDC")).xs(
        "usdt", level="pool")["event_peg_loss"]
    assert usdt[usdt == 1].index.tolist() == list(DAYS[3:6])


def test_a_recovery_from_a_depeg_is_no_loss() -> None:
    """Entering at 0.88 and recovering to a dollar gains: the event is a fall from the price at entry."""
    targets = build_targets(history(), meta(), TargetParams(horizon_days=3))
    usdc = targets.xs("usdc", level="pool")["event_peg_loss"]
    assert usdc.loc[DAYS[2]] == 1.0  # the day before the fall
    assert usdc.loc[DAYS[3]] == 0.0 and usdc.loc[DAYS[4]] == 0.0  # at 0.88 and 0.90: it only rises after


def test_the_measured_loss_of_an_event_is_counted_in_the_asset() -> None:
    """A USDC market through USDC's depeg: a 12 % loss in dollars, no event at all in USDC."""
    alone = history({"usdc": PRICES["usdc"]})
    in_usd = loss_given_event(alone, meta(["usdc"]), TargetParams(horizon_days=3))
    assert in_usd == pytest.approx(1 - 0.88)
    assert loss_given_event(alone, meta(["usdc"]), TargetParams(horizon_days=3, asset_symbol="USDC")) is None
