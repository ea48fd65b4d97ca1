"""The forecasts a decision is journaled with (`journal.db.Decision.predictions`), in one spelling: the keeper's
cycle writes them, the depositor tools read them back to say why the keeper chose its targets.

Per pool id: the market's address, the forecast APY (%), p_event and, when the forecast carried its own, the
loss given an event it was priced at (`strategy.allocator.loss_given`), and when the allocator was told them, the
market's supply besides the vault (`MarketForecast.supply`, base units, as a string: it may exceed 2^53), its
rate curve's elasticity and, where the data holds the vault, the vault's position the rate is at
(`MarketForecast.held`, base units, as a string; left out at 0). Rows journaled before a key existed read as
forecasts without it.
"""

from collections.abc import Mapping
from typing import Any

from web3 import Web3

from strategy.allocator import MarketForecast
from strategy.market_supply import MarketDepth


def predictions_json(forecasts: Mapping[str, MarketForecast], markets: Mapping[str, str],
                     depth: Mapping[str, MarketDepth] | None = None) -> dict[str, Any]:
    """The JSON of `forecasts` (by pool id), each with its market's address from `markets` (None if unlisted)
    and that market's `depth` (by market) where the allocator was told it."""
    depth = depth or {}

    def row(pool: str, f: MarketForecast) -> dict[str, Any]:
        market = markets.get(pool)
        known = depth.get(market) if market is not None else None
        return {"market": market, "apy_pct": f.apy_pct, "p_event": f.p_event,
                **({} if f.loss_given_event is None else {"loss_given_event": f.loss_given_event}),
                **({} if known is None else {"supply": str(known.supply), "elasticity": known.elasticity}),
                **({"held": str(known.held)} if known is not None and known.held else {})}

    return {pool: row(pool, f) for pool, f in sorted(forecasts.items())}


def forecasts_problem(predictions: Mapping[str, Any]) -> str | None:
    """What keeps journaled `predictions` from being read as `forecasts_by_market` reads them (a journal edited by
    hand or damaged; None: nothing), naming the pool."""
    for pool, p in predictions.items():
        if not isinstance(p, Mapping):
            return f"the forecast of {pool!r} is not a JSON object"
        market = p.get("market")
        if market and not (isinstance(market, str) and Web3.is_address(market)):  # none: a pool not listed
            return f"the market of {pool!r} is {market!r}, not an address"
        numbers = ["apy_pct", "p_event", *(["loss_given_event"] if p.get("loss_given_event") is not None else []),
                   *(["elasticity"] if "elasticity" in p else [])]  # the two optional ones as they are read
        for key in numbers:
            value = p.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"the {key} of {pool!r} is {value!r}, not a number"
        for key in ("supply", "held"):
            amount = p.get(key)
            if amount is not None and not (isinstance(amount, str) and amount.isascii() and amount.isdigit()):
                return f"the {key} of {pool!r} is {amount!r}, not a whole amount"
    return None


def forecasts_by_market(predictions: Mapping[str, Any]) -> dict[str, MarketForecast]:
    """The journaled forecasts keyed by the market address each names; a pool without a market is left out."""
    return {p["market"]: MarketForecast(apy_pct=float(p["apy_pct"]), p_event=float(p["p_event"]),
                                        loss_given_event=None if p.get("loss_given_event") is None
                                        else float(p["loss_given_event"]),
                                        supply=None if p.get("supply") is None else int(p["supply"]),
                                        elasticity=float(p.get("elasticity", 1.0)), held=int(p.get("held", "0")))
            for p in predictions.values() if p.get("market")}
