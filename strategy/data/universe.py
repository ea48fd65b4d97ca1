"""Which pools a stablecoin vault (the devnet's USDC vault) can supply to: the one rule that `vaultbot data
download` records by default, the synthetic generator produces for a vault and a synthetic backtest invests in.
"""

from __future__ import annotations

import pandas as pd

# DeFiLlama joins the tokens of a multi-token pool (a DEX pair, an LP share) with "-": "USDC-USDT", "DAI-USDC-USDT".
_TOKEN_SEPARATOR = "-"


def is_stablecoin_lending(pools_meta: pd.DataFrame) -> pd.Series:
    """Per row of a pool-metadata table (canonical or parsed `/pools`): whether it is a stablecoin lending pool,
    one a vault can supply its stablecoin to and withdraw it from: flagged as a stablecoin pool and of one token
    (a lending market or a single-asset vault; a pair of stablecoins is an LP position, not a market to lend to)."""
    symbol = pools_meta["symbol"]
    one_token = symbol.map(lambda text: isinstance(text, str) and _TOKEN_SEPARATOR not in text)
    return pools_meta["stablecoin"].fillna(False).astype(bool) & one_token.astype(bool)
