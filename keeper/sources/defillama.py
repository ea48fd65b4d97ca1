"""DeFiLlama yields: the list of pools (`/pools`) and one pool's daily history (`/chart/{pool}`)."""

from functools import partial
from urllib.parse import quote

import pandas as pd
import requests

from keeper.sources.http import fetch_json
from strategy.data.defillama import parse_chart, parse_pools


class DefiLlamaYields:
    """Reads the yields API at `base_url` (https://yields.llama.fi unless configured otherwise)."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")

    def pools(self) -> pd.DataFrame:
        """Every pool DeFiLlama tracks, one row each (see `strategy.data.defillama.parse_pools`)."""
        return fetch_json(self._session, f"{self._base_url}/pools", parse_pools)

    def chart(self, pool_id: str) -> pd.DataFrame:
        """The canonical market history of one pool (see `strategy.data.defillama.parse_chart`)."""
        if not pool_id.strip():
            raise ValueError("pool_id must not be empty")
        url = f"{self._base_url}/chart/{quote(pool_id, safe='')}"
        return fetch_json(self._session, url, partial(parse_chart, pool_id))
