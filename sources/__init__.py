"""The keeper's HTTP data sources (DeFiLlama yields and prices, news feeds) and the data gate.

`open_sources(config)` builds the shared session and the three sources on it; `Sources.start_cycle` gives
each keeper cycle a fresh retry budget and its deadline. Transport failures raise `SourceError`; payloads
that fail to parse raise `PayloadError`; `check_market` and `check_prices` refuse stale, incomplete or
implausible data before it can reach a transaction.
"""

from dataclasses import dataclass

from sources.config import HttpSettings, SourcesConfig
from sources.defillama import DefiLlamaYields
from sources.gate import (
    DataGateError,
    GateLimits,
    ImplausibleDataError,
    MissingDataError,
    StaleDataError,
    check_market,
    check_prices,
)
from sources.http import PayloadError, SourceError, SourceSession, build_session
from sources.news import NewsBatch, NewsFeeds
from sources.prices import DefiLlamaPrices


@dataclass(frozen=True)
class Sources:
    """The data sources of one keeper, sharing one session (and so one cache)."""

    session: SourceSession
    yields: DefiLlamaYields
    prices: DefiLlamaPrices
    news: NewsFeeds

    def start_cycle(self, deadline_s: float | None) -> None:
        """A cycle starts: its fetches get the full retry budget and end at most `deadline_s` from now."""
        self.session.budget.start_cycle(deadline_s)

    def close(self) -> None:
        """Releases the connection pool and the cache database."""
        self.session.close()


def open_sources(config: SourcesConfig) -> Sources:
    """Builds the shared session from `config.http` and points each source at its base URL."""
    session = build_session(config.http)
    return Sources(
        session=session,
        yields=DefiLlamaYields(session, config.yields_base_url),
        prices=DefiLlamaPrices(session, config.coins_base_url),
        news=NewsFeeds(session),
    )


__all__ = [
    "DataGateError",
    "DefiLlamaPrices",
    "DefiLlamaYields",
    "GateLimits",
    "HttpSettings",
    "ImplausibleDataError",
    "MissingDataError",
    "NewsBatch",
    "NewsFeeds",
    "PayloadError",
    "SourceError",
    "SourceSession",
    "Sources",
    "SourcesConfig",
    "StaleDataError",
    "build_session",
    "check_market",
    "check_prices",
    "open_sources",
]
