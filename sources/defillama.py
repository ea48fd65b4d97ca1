"""DeFiLlama yields: the list of pools (`/pools`) and one pool's daily history (`/chart/{pool}`)."""

from functools import partial
from urllib.parse import quote

import pandas as pd
import requests

from sources.http import fetch_json_body
from strategy.data.defillama import parse_chart, parse_pools
from strategy.data.schema import TIMESTAMP

_UNOBSERVED = pd.Timestamp(0, tz="UTC")  # the parse's stamp, replaced by the time of the read


class DefiLlamaYields:
    """Reads the yields API at `base_url` (https://yields.llama.fi unless configured otherwise)."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")

    def pools(self) -> pd.DataFrame:
        """Every pool DeFiLlama tracks, one row each (see `strategy.data.defillama.parse_pools`)."""
        return self.pools_with_body()[0]

    def pools_with_body(self) -> tuple[pd.DataFrame, bytes]:
        """`pools`, and the answer's body as served; the snapshot is observed when read, whereas its parse, of
        the body alone, may be that of the same answer read before (`sources.http.Answers`)."""
        listed, body = fetch_json_body(self._session, f"{self.base_url}/pools",
                                       partial(parse_pools, timestamp=_UNOBSERVED))
        listed[TIMESTAMP] = pd.Series(pd.Timestamp.now(tz="UTC"), index=listed.index, dtype=listed[TIMESTAMP].dtype)
        return listed, body

    def chart(self, pool_id: str) -> pd.DataFrame:
        """The canonical market history of one pool (see `strategy.data.defillama.parse_chart`)."""
        return self.chart_with_body(pool_id)[0]

    def chart_with_body(self, pool_id: str) -> tuple[pd.DataFrame, bytes]:
        """`chart`, and the answer's body as served."""
        if not pool_id.strip():
            raise ValueError("pool_id must not be empty")
        url = f"{self.base_url}/chart/{quote(pool_id, safe='')}"
        return fetch_json_body(self._session, url, partial(parse_chart, pool_id))
