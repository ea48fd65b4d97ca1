"""DeFiLlama coins: price history of tokens (`/chart/{chain:address,...}?start=&span=&period=`)."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

import pandas as pd
import requests

from sources.http import fetch_json
from strategy.data.defillama import parse_coin_chart
from strategy.data.schema import TIMESTAMP

# Days asked for in one daily chart request: a longer history is fetched in consecutive requests of this span.
MAX_SPAN_DAYS = 365
MAX_COINS_PER_REQUEST = 40  # the coins go into the URL's path: keep it well under common 8 KiB limits


class DefiLlamaPrices:
    """Reads the coins API at `base_url` (https://coins.llama.fi unless configured otherwise)."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")

    def chart(self, coins: Sequence[str], start: datetime, span: int, period: str = "1d") -> pd.DataFrame:
        """`span` points `period` apart from `start` for each coin given as "chain:address"."""
        if not coins:
            raise ValueError("coins must name at least one coin as chain:address")
        malformed = [coin for coin in coins if coin.count(":") != 1 or "," in coin]
        if malformed:
            raise ValueError(f"coins must look like chain:address, got {', '.join(map(repr, malformed))}")
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware, got {start!r}")
        if span < 1:
            raise ValueError(f"span must be at least 1, got {span}")
        url = f"{self._base_url}/chart/{quote(','.join(coins), safe=':,')}"
        params: dict[str, str | int] = {"start": int(start.timestamp()), "span": span, "period": period}
        return fetch_json(self._session, url, parse_coin_chart, params)

    def daily(self, coins: Sequence[str], start: datetime, days: int) -> pd.DataFrame:
        """Daily prices of `coins` over `days` days from `start`: consecutive `chart` requests of at most
        `MAX_SPAN_DAYS` points, each day asked for once, for at most `MAX_COINS_PER_REQUEST` coins at a time."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        groups = [coins[i:i + MAX_COINS_PER_REQUEST] for i in range(0, len(coins), MAX_COINS_PER_REQUEST)]
        chunks = [self.chart(group, start + timedelta(days=offset), min(MAX_SPAN_DAYS, days - offset))
                  for group in groups for offset in range(0, days, MAX_SPAN_DAYS)]
        prices = pd.concat(chunks, ignore_index=True).drop_duplicates(["coin", TIMESTAMP])
        return prices.sort_values(["coin", TIMESTAMP], ignore_index=True)
