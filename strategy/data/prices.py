"""Underlying-token prices joined into a market history: the input of the peg features and the peg-loss target.

DeFiLlama's `/chart/{pool}` carries no price; its coins API does, per token ("chain:address", see
`strategy.data.defillama.parse_coin_chart`). A pool takes the price of its one underlying token; a pool with
several tokens, or none, gets no price (a pair's price is not one token's peg). Each market row gets the
latest price observed at or before its own timestamp, at most `MAX_PRICE_AGE` older, never a later one, so
the join is point-in-time like every feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.data.schema import POOL, TIMESTAMP

# DeFiLlama's coins API names some chains differently from the yields API's `chain` field.
COINS_CHAIN_NAMES = {"avalanche": "avax", "binance": "bsc", "gnosis": "xdai", "zksync era": "era",
                     "polygon zkevm": "polygon_zkevm"}
MAX_PRICE_AGE = pd.Timedelta(days=2)  # an older price is no longer today's
# Longest coins key a pool's token makes (an address is some 50): forty go into one request's URL path.
MAX_COIN_ID_CHARS = 100


def coin_id(chain: str, token: str) -> str:
    """DeFiLlama's coins key of `token` on `chain`, e.g. ("Ethereum", "0xA0b8...") -> "ethereum:0xa0b8..."."""
    name = chain.strip().lower()
    return f"{COINS_CHAIN_NAMES.get(name, name)}:{token.strip().lower()}"


def pool_coins(pools_meta: pd.DataFrame) -> dict[str, str]:
    """Pool id -> coins key of its single underlying token (pools with several or none are left out, and so is
    one whose chain and token make no coins key: `is_coin_id`)."""
    coins = {
        pool: coin_id(chain, tokens[0])
        for pool, chain, tokens in zip(pools_meta[POOL], pools_meta["chain"], pools_meta["underlying_tokens"],
                                       strict=True)
        if isinstance(tokens, list | tuple) and len(tokens) == 1 and isinstance(tokens[0], str)
        and isinstance(chain, str)
    }
    return {pool: coin for pool, coin in coins.items() if is_coin_id(coin)}


def is_coin_id(coin: str) -> bool:
    """Whether `coin` is a coins key the coins API can be asked for: "chain:address", neither part empty, no
    other colon and no comma (they separate the coins of a request), at most `MAX_COIN_ID_CHARS` long."""
    chain, _, address = coin.partition(":")
    return bool(chain) and bool(address) and ":" not in address and "," not in coin and len(coin) <= MAX_COIN_ID_CHARS


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


def in_asset(price: pd.DataFrame, pools_meta: pd.DataFrame | None, asset_symbol: str | None) -> pd.DataFrame:
    """Wide (days × pools) USD prices re-expressed in `asset_symbol`, the vault's unit of account.

    A vault counts in its asset, so a depeg of the asset itself moves its idle cash and every position alike and
    costs its depositors nothing the vault could have avoided (a USDC vault in Aave's USDC market lost nothing
    in USDC in March 2023): the asset's own pools are exactly 1, any other pool's price is divided by the
    asset's price that day (the median over its priced pools), NaN on a day the asset has no price. Without an
    asset, without metadata, or when no pool of the data is one of the asset's, prices stay in USD (the dollar
    stands in for a stablecoin's peg)."""
    if asset_symbol is None or pools_meta is None:
        return price
    symbols = pools_meta.set_index(POOL)["symbol"].reindex(price.columns)
    own = symbols.astype("string").str.casefold().eq(asset_symbol.casefold()).fillna(False).to_numpy(bool)
    if not own.any():
        return price
    asset_price = price.loc[:, own].median(axis=1, skipna=True)
    relative = price.div(asset_price, axis=0)
    relative.loc[:, own] = np.where(price.loc[:, own].notna(), 1.0, np.nan)
    return relative
