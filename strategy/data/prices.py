"""Underlying-token prices joined into a market history: the input of the peg features and the peg-loss target.

DeFiLlama's `/chart/{pool}` carries no price; its coins API does, per token ("chain:address", see
`strategy.data.defillama.parse_coin_chart`). A pool takes the price of its one underlying token; a pool with
several tokens, or none, gets no price (a pair's price is not one token's peg). Each market row gets the
latest price observed at or before its own timestamp, at most `MAX_PRICE_AGE` older, never a later one, so
the join is point-in-time like every feature.
"""

from __future__ import annotations

import pandas as pd

from strategy.data.schema import POOL, TIMESTAMP

# DeFiLlama's coins API names some chains differently from the yields API's `chain` field.
COINS_CHAIN_NAMES = {"avalanche": "avax", "binance": "bsc", "gnosis": "xdai", "zksync era": "era",
                     "polygon zkevm": "polygon_zkevm"}
MAX_PRICE_AGE = pd.Timedelta(days=2)  # an older price is no longer today's


def coin_id(chain: str, token: str) -> str:
    """DeFiLlama's coins key of `token` on `chain`, e.g. ("Ethereum", "0xA0b8...") -> "ethereum:0xa0b8..."."""
    name = chain.strip().lower()
    return f"{COINS_CHAIN_NAMES.get(name, name)}:{token.strip().lower()}"


def pool_coins(pools_meta: pd.DataFrame) -> dict[str, str]:
    """Pool id -> coins key of its single underlying token (pools with several or none are left out)."""
    return {
        pool: coin_id(chain, tokens[0])
        for pool, chain, tokens in zip(pools_meta[POOL], pools_meta["chain"], pools_meta["underlying_tokens"],
                                       strict=True)
        if isinstance(tokens, list | tuple) and len(tokens) == 1 and isinstance(tokens[0], str)
    }


def with_prices(history: pd.DataFrame, pools_meta: pd.DataFrame, coin_prices: pd.DataFrame) -> pd.DataFrame:
    """`history` with `price` filled from `coin_prices` (timestamp, coin, price) where it has none (module
    docstring); rows and their order are unchanged."""
    coins = pool_coins(pools_meta)
    rows = history.assign(_row=range(len(history)), coin=history[POOL].map(coins))
    known = rows[rows["coin"].notna()].sort_values(TIMESTAMP, kind="stable")
    prices = coin_prices[[TIMESTAMP, "coin", "price"]].rename(columns={"price": "_coin_price"})
    prices = prices.sort_values(TIMESTAMP, kind="stable")
    joined = pd.merge_asof(known, prices.astype({TIMESTAMP: known[TIMESTAMP].dtype}), on=TIMESTAMP, by="coin",
                           direction="backward", tolerance=MAX_PRICE_AGE)
    price = pd.Series(float("nan"), index=range(len(history)))
    price[joined["_row"].to_numpy()] = joined["_coin_price"].to_numpy()
    result = history.copy()
    existing = result["price"] if "price" in result else pd.Series(float("nan"), index=result.index)
    result["price"] = existing.fillna(pd.Series(price.to_numpy(), index=result.index))
    return result
