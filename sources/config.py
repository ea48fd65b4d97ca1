"""Settings for the keeper's data sources: base URLs, HTTP timeouts, retries and the on-disk cache.

Every URL is configurable so that tests (and mirrors) can point the keeper at another server.
"""

from importlib.metadata import version
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from vaultbot.paths import cache_dir

# A duration, a rate or a factor in a configuration: TOML writes inf and nan, which no timer or sum takes.
FinitePositive = Annotated[PositiveFloat, AllowInfNan(False)]
FiniteNonNegative = Annotated[NonNegativeFloat, AllowInfNan(False)]


def default_cache_dir() -> Path:
    """Cached HTTP answers live under vaultbot's cache directory ($VAULTBOT_CACHE or the user's cache)."""
    return cache_dir() / "http"


class HttpSettings(BaseModel):
    """How the shared HTTP session behaves; the defaults suit DeFiLlama's public API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: FinitePositive = 5.0
    read_timeout: FinitePositive = 30.0  # per read: a server trickling bytes never hits it, fetch_deadline stops it
    # Each fetch, its retries, waits and whole body included, ends within this many seconds.
    fetch_deadline: FinitePositive = 60.0
    # A body larger than this once decoded (a gzip bomb inflates a few KB to GBs) is refused, never cached.
    max_body_bytes: PositiveInt = 64 * 2**20
    retries: NonNegativeInt = 3
    # Sleep between retries is backoff_factor * 2**(n-1) seconds, capped at backoff_max.
    backoff_factor: FiniteNonNegative = 0.5
    backoff_max: FinitePositive = 30.0
    # A server's Retry-After up to this many seconds is waited for; a longer one fails the fetch at once.
    retry_after_max: NonNegativeInt = 30
    # Retries all the fetches of one keeper cycle may make together: a failing source fails fast after these.
    retries_per_cycle: NonNegativeInt = 20
    cache_dir: Path = Field(default_factory=default_cache_dir)
    cache_expire_seconds: FinitePositive = 300.0
    user_agent: str = Field(default=f"vaultbot-keeper/{version('vaultbot')}", min_length=1)


class SourcesConfig(BaseModel):
    """Base URLs of the data sources plus the HTTP settings they share."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    yields_base_url: str = "https://yields.llama.fi"
    coins_base_url: str = "https://coins.llama.fi"
    http: HttpSettings = Field(default_factory=HttpSettings)

    @field_validator("yields_base_url", "coins_base_url")
    @classmethod
    def _http_url_without_trailing_slash(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL such as https://yields.llama.fi, got {url!r}")
        return url.rstrip("/")
