"""The canonical tables every loader, the synthetic generator and the feature code agree on.

Market history (long format), one row per pool per timestamp, sorted by (pool, timestamp):

=============  ==========================  ===========================================================
column         type                        meaning
=============  ==========================  ===========================================================
timestamp      datetime64[us, UTC]         observation time
pool           str                         pool id (DeFiLlama's pool uuid)
apy            float, required             total APY in percent (4.1 = 4.1 %), = apy_base + apy_reward
apy_base       float, may be NaN           APY from the pool itself (interest, fees), percent
apy_reward     float, may be NaN           APY paid in reward tokens, percent
tvl_usd        float, required             total value locked, USD
price          float, optional column      price of the underlying in USD (> 0)
utilization    float, optional column      borrowed / supplied, in [0, 1] (lending pools)
=============  ==========================  ===========================================================

Plausible ranges (outside them a record is rejected, or dropped with ``strict=False``): every APY column in
[-100, 10 000] %, tvl_usd >= 0, price > 0, utilization in [0, 1].

Pool metadata, one row per pool: pool, chain, project (DeFiLlama slug, e.g. ``aave-v3``), symbol
(``USDC`` or ``USDC-WETH``), stablecoin (bool), underlying_tokens (list of token addresses). News items are
matched to pools through project and symbol.

News, one row per item, sorted by timestamp: timestamp (publication, UTC), title, source (feed name),
url (may be missing), summary (optional, plain text).
"""

TIMESTAMP = "timestamp"
POOL = "pool"

MARKET_REQUIRED = (TIMESTAMP, POOL, "apy", "apy_base", "apy_reward", "tvl_usd")
MARKET_OPTIONAL = ("price", "utilization")
MARKET_COLUMNS = MARKET_REQUIRED + MARKET_OPTIONAL
APY_COLUMNS = ("apy", "apy_base", "apy_reward")

APY_BOUNDS = (-100.0, 10_000.0)
TVL_BOUNDS = (0.0, float("inf"))
PRICE_BOUNDS = (0.0, float("inf"))  # lower bound exclusive
UTILIZATION_BOUNDS = (0.0, 1.0)

POOL_META_COLUMNS = (POOL, "chain", "project", "symbol", "stablecoin", "underlying_tokens")

NEWS_REQUIRED = (TIMESTAMP, "title", "source", "url")
NEWS_COLUMNS = NEWS_REQUIRED + ("summary",)
