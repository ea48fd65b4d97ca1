"""The devnet's market data for the keeper: `devnet.llama_server` started on 127.0.0.1 and a config pointed at it.

The production composition root (`keeper.startup`) knows nothing of it: whoever runs a keeper on the devnet
(the CLI, the demo, a benchmark) enters `serving_synthetic_sources(config)` first and opens the keeper with
the config it yields.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from chain.deployment import Deployment
from chain.rpc import connect
from chain.vault_reader import VaultReader
from config import Config, ConfigError
from devnet.llama_server import NEWS_PATH, SyntheticLlama, serve_synthetic_llama

log = logging.getLogger(__name__)


@contextmanager
def serving_synthetic_sources(config: Config) -> Iterator[Config]:
    """`config` as it is without `[sources.synthetic]`; with it, the synthetic DeFiLlama served while the block
    runs and `config` pointed at it: yields, coins and news from the server, its pools mapped in order onto the
    markets the vault lists (unless `[markets]` maps them itself)."""
    synthetic = config.sources.synthetic
    if synthetic is None:
        yield config
        return
    listed = _listed_markets(config)
    llama = SyntheticLlama.generate(synthetic.seed, synthetic.days, synthetic.pools or len(listed))
    server = serve_synthetic_llama(llama)
    log.info("serving synthetic DeFiLlama data (seed %d) at %s", synthetic.seed, server.url)
    try:
        sources = config.sources.model_copy(update={"yields_base_url": server.url, "coins_base_url": server.url,
                                                    "news_feeds": [server.url + NEWS_PATH]})
        markets = dict(config.markets) or dict(zip(llama.pool_ids, listed, strict=False))
        yield config.model_copy(update={"sources": sources, "markets": markets})
    finally:
        server.stop()


def _listed_markets(config: Config) -> list[str]:
    """The markets the devnet vault lists now, read through its deployment JSON."""
    chain = config.chain
    if chain is None or chain.deployment is None:
        raise ConfigError("sources.synthetic needs chain.deployment: the devnet JSON names the vault and its ABIs")
    try:
        deployment = Deployment.load(chain.deployment)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"chain.deployment: {error}") from error
    w3 = connect(list(chain.rpc_urls), chain.rpc_timeout_s)
    return list(VaultReader(w3, deployment.vault, deployment).guardrails().markets)
