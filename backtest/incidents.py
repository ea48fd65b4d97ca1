"""What an incident costs the depositors of the pools it names: its reported loss, pro rata.

An incident is a news item `strategy.features.news.incident_matches` reports for a pool's protocol (an
exploit list such as DeFiHackLabs', or headlines). Its title or summary usually states the amount lost
("lost ~$27,174", "Lost: 52000", "lost $1M"); that amount is spread over what the depositors of the
protocol's pools in the data supplied that day (available liquidity / (1 - utilization), or the available
liquidity where utilization is unknown), so a position loses `lost / supplied` of its value, at most all
of it. The data holds only some of a protocol's markets, so the share is an upper bound. An amount in a
token other than dollars or stablecoins, or none ("n/a"), cannot be priced here and costs nothing; such
incidents are counted (`IncidentLosses.unpriced`) so the report can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from strategy.data.daily import DailyPanel
from strategy.data.schema import TIMESTAMP
from strategy.features.market import supplied_usd
from strategy.features.news import incident_matches

_AMOUNT = re.compile(r"\blost\b\W{0,3}~?\s*(?P<usd>\$)?\s*(?P<number>\d[\d,]*(?:\.\d+)?)\s*(?P<scale>[KMB]\b)?"
                     r"(?:\s*(?P<unit>[A-Za-z$]+))?", re.IGNORECASE)
_SCALE = {None: 1.0, "K": 1e3, "M": 1e6, "B": 1e9}
_DOLLARS = {"USD", "USDC", "USDT", "DAI", "DOLLARS", "$"}


def lost_usd(text: str) -> float | None:
    """The dollar amount an incident's text says was lost, or None when it states none in dollars."""
    match = _AMOUNT.search(text)
    if match is None:
        return None
    unit = (match["unit"] or "").upper()
    if unit and unit not in _DOLLARS and not match["usd"]:
        return None  # "lost 21 ETH": a token amount, unpriced here
    return float(match["number"].replace(",", "")) * _SCALE[(match["scale"] or "").upper() or None]


@dataclass(frozen=True)
class IncidentLosses:
    share: pd.DataFrame  # days × pools: share of a position lost that day
    unpriced: int  # incidents naming a pool of the data whose loss states no dollar amount


def incident_losses(history: pd.DataFrame, news: pd.DataFrame | None, pools_meta: pd.DataFrame | None,
                    pools: list[str]) -> IncidentLosses:
    """Per day and pool, the share of a position the day's incidents cost (module docstring)."""
    panel = DailyPanel(history)
    share = pd.DataFrame(0.0, index=panel.days, columns=pd.Index(pools))
    if news is None or pools_meta is None or news.empty:
        return IncidentLosses(share, 0)
    matched = incident_matches(news, pools_meta).reindex(columns=panel.pools, fill_value=False)
    hits = matched.to_numpy().any(axis=1)
    tvl, utilization = panel.wide("tvl_usd"), panel.wide("utilization")
    supplied = supplied_usd(tvl, utilization).fillna(tvl)  # unknown utilization: what is available
    unpriced = 0
    for item in np.flatnonzero(hits):
        row = news.iloc[item]
        day = pd.Timestamp(row[TIMESTAMP]).ceil("D")
        lost = lost_usd(f"{row['title']}. {row.get('summary') or ''}")
        if lost is None:
            unpriced += 1
            continue
        if day not in supplied.index:
            continue
        named = matched.columns[matched.iloc[item].to_numpy()]
        total = float(cast(pd.Series, supplied.loc[day, list(named)]).sum())  # one day's row: a Series
        if total > 0:
            hit = [pool for pool in named if pool in share.columns]
            share.loc[day, hit] = np.minimum(1.0, share.loc[day, hit] + lost / total)
    return IncidentLosses(share, unpriced)
