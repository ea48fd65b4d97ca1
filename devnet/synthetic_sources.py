"""The devnet's market data for the keeper: `devnet.llama_server` started on 127.0.0.1 and a config pointed at it.

The synthetic market runs on the devnet's chain clock (`ChainMarket`): it stands on the last day of its history
when the devnet is deployed and moves one market day per day of chain time (the demo moves the chain a day or
more per cycle), and each market the vault lists earns what its pool pays: on the first request of a new market
day, before the answer, every mapped MockMarket's rate is set to its pool's APY of that day. The keeper fetches
its data before it reads the chain, so the rates it finds on chain are those of the data it was served.

The production composition root (`keeper.startup`) knows nothing of it: whoever runs a keeper on the devnet
(the CLI, the demo, a benchmark) enters `serving_synthetic_sources(config)` first and opens the keeper with
the config it yields.
"""

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, Web3RPCError

from chain.deployment import Deployment
from chain.rpc import connect
from chain.vault_reader import VaultReader
from config import Config, ConfigError
from devnet.deploy import apy_to_rate_wad
from devnet.llama_server import NEWS_PATH, SyntheticLlama, serve_synthetic_llama

log = logging.getLogger(__name__)

# The server's answers follow the chain's clock, which the demo moves on by days within seconds: a keeper must
# not be handed the last cycle's answers from its wall-clock cache.
SERVED_CACHE_S = 0.001


class ChainMarket:
    """The synthetic market on the day the chain's clock is on, with the mapped markets' rates set to it."""

    def __init__(self, llama: SyntheticLlama, w3: Web3, deployment: Deployment, markets: Mapping[str, str]) -> None:
        self.start, self.w3, self.operator = llama, w3, deployment.admin  # the devnet's markets' operator
        # chain time of the start's market day: the deployment's, so every process on this devnet agrees
        try:
            self.anchor = w3.eth.get_block(deployment.deployed_at)["timestamp"]
        except BlockNotFound:
            raise ConfigError(f"chain.deployment: the chain has no block {deployment.deployed_at}, where the devnet "
                              f"was deployed: the deployment JSON is of another chain") from None
        try:
            self.markets = {pool: deployment.contract(w3, "MockMarket", market)
                            for pool, market in markets.items() if pool in llama.pool_ids}
        except ValueError as error:  # its ABI moved or deleted since the deployment
            raise ConfigError(f"chain.deployment: {error}") from None
        self._lock = threading.Lock()  # the server answers requests in threads
        self._current: SyntheticLlama | None = None

    def current(self) -> SyntheticLlama:
        """The market on the chain's day; on a new day the markets take its rates first."""
        elapsed = self.w3.eth.get_block("latest")["timestamp"] - self.anchor
        day = self.start.on(self.start.day + pd.Timedelta(seconds=elapsed)).day
        with self._lock:
            if self._current is None or self._current.day != day:
                self._current = self.start.on(day)
                self.set_rates(self._current)
            return self._current

    def set_rates(self, llama: SyntheticLlama) -> None:
        """Each mapped MockMarket earns its pool's APY of `llama`'s day; a market that refuses is logged, and the
        data are served all the same."""
        apys = llama.apys()
        for pool, market in self.markets.items():
            try:
                tx = market.functions.set_rate(apy_to_rate_wad(apys[pool] / 100)).transact({"from": self.operator})
                self.w3.eth.wait_for_transaction_receipt(tx)
            except (ContractLogicError, Web3RPCError) as error:
                log.warning("cannot set the rate of market %s to pool %s's APY: %s", market.address, pool, error)


@contextmanager
def serving_synthetic_sources(config: Config) -> Iterator[Config]:
    """`config` as it is without `[sources.synthetic]`; with it, the synthetic DeFiLlama served while the block
    runs on the chain's day and `config` pointed at it: yields, coins and news from the server, its pools mapped
    in order onto the markets the vault lists (unless `[markets]` maps them itself)."""
    synthetic = config.sources.synthetic
    if synthetic is None:
        yield config
        return
    deployment, w3 = _devnet(config)
    listed = list(VaultReader(w3, deployment.vault, deployment).guardrails().markets)
    llama = SyntheticLlama.generate(synthetic.seed, synthetic.days, synthetic.pools or len(listed))
    markets = dict(config.markets) or dict(zip(llama.pool_ids, listed, strict=False))
    server = serve_synthetic_llama(ChainMarket(llama, w3, deployment, markets).current)
    log.info("serving synthetic DeFiLlama data (seed %d) at %s", synthetic.seed, server.url)
    try:
        http = config.sources.http.model_copy(update={"cache_expire_seconds": SERVED_CACHE_S})
        sources = config.sources.model_copy(update={"yields_base_url": server.url, "coins_base_url": server.url,
                                                    "news_feeds": [server.url + NEWS_PATH], "http": http})
        yield config.model_copy(update={"sources": sources, "markets": markets})
    finally:
        server.stop()


def _devnet(config: Config) -> tuple[Deployment, Web3]:
    """The devnet's deployment JSON (it names the vault and its ABIs) and the chain."""
    chain = config.chain
    if chain is None or chain.deployment is None:
        raise ConfigError("sources.synthetic needs chain.deployment: the devnet JSON names the vault and its ABIs")
    try:
        deployment = Deployment.load(chain.deployment)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"chain.deployment: {error}") from error
    return deployment, connect(list(chain.rpc_urls), chain.rpc_timeout_s)
