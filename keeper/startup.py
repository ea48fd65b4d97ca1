"""Builds a running `Keeper` from a `Config`: journal, chain connection, key, sources, model.

Every check that can fail at start fails here with a message naming the setting: another keeper holding
the journal (`journal.lock`), the RPC's chain id against `chain.chain_id` (the one chain the sender signs
for, asked again before every signing), the key's address against the vault's keeper role, the markets
against the vault's list, a missing model artifact (unless `model.train_if_missing`).
"""

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from web3 import Web3

from chain.deployment import Deployment
from chain.keys import KeyLoadError, load_account
from chain.rpc import connect
from chain.tx import TxSender
from chain.vault_reader import VaultReader
from config import ChainSettings, Config
from journal.db import KeeperDB
from journal.lock import JournalLocked, journal_lock
from journal.news import NewsArchive
from keeper.cycle import Keeper, VaultChain
from keeper.metrics import KeeperMetrics
from keeper.models import KeeperModels
from sources import Sources, open_sources
from sources.inputs import (
    fetch_history,
    fetch_pools_meta,
    history_days,
    with_token_prices,
)

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The keeper cannot start as configured; the message names the setting to fix."""


@contextmanager
def open_keeper(config: Config, *, metrics: KeeperMetrics | None = None) -> Iterator[Keeper]:
    """A ready keeper; closes its journal, sources and the synthetic data server on exit."""
    with ExitStack() as stack:
        chain = open_chain(config)  # first: a chain or key that fails leaves no journal behind
        markets = config.markets
        _check_markets(markets, chain.reader)
        db = KeeperDB(config.service.database_url)
        stack.callback(db.close)
        try:
            stack.enter_context(journal_lock(db))
        except JournalLocked as locked:
            raise StartupError(str(locked)) from None
        sources = open_sources(config.sources)
        stack.callback(sources.close)
        try:  # the risk model counts losses in the vault's asset
            settings = config.strategy.model.for_asset(chain.reader.asset.functions.symbol().call())
        except ValueError as error:
            raise StartupError(str(error)) from None
        news = NewsArchive(db)
        models = KeeperModels.open(config.model, settings,
                                   lambda: _training_data(sources, config, list(markets), news), metrics=metrics)
        keeper = Keeper(config, db, sources, chain, models, markets, news, metrics=metrics)
        keeper.recover_interrupted()
        yield keeper


def connect_vault(config: Config) -> tuple[Web3, VaultReader]:
    """Connects to the first RPC that answers and checks its chain id; no key needed (audits, status)."""
    settings = _chain_settings(config)
    w3 = connect(list(settings.rpc_urls), settings.rpc_timeout_s)
    served = w3.eth.chain_id
    if served != settings.chain_id:
        raise StartupError(f"chain.chain_id is {settings.chain_id}, but the RPC serves chain {served}")
    vault_address, abi_source = _vault_location(config)
    return w3, VaultReader(w3, vault_address, abi_source)


def open_chain(config: Config) -> VaultChain:
    """`connect_vault` plus the keeper's key (checked against the vault's keeper role) and its sender."""
    settings = _chain_settings(config)
    w3, reader = connect_vault(config)
    try:
        account = load_account(
            keystore_path=settings.keystore, password_env=settings.password_env, password_file=settings.password_file,
            raw_key_env=settings.raw_key_env, chain_id=settings.chain_id,
        )
    except KeyLoadError as error:
        raise StartupError(f"chain key: {error}") from error
    keeper_role = reader.snapshot().keeper
    if Web3.to_checksum_address(keeper_role) != account.address:
        raise StartupError(f"the configured key is {account.address}, but the vault's keeper is {keeper_role}")
    sender = TxSender(w3, account, chain_id=settings.chain_id, max_fee_gwei=settings.max_fee_gwei,
                      priority_fee_gwei=settings.priority_fee_gwei, receipt_timeout_s=settings.receipt_timeout_s,
                      bump_percent=settings.bump_percent)
    return VaultChain(w3, settings.chain_id, reader.contract, reader, sender, account.address)


def _chain_settings(config: Config) -> ChainSettings:
    # load_config(keeper=True) requires [chain]; a Config built otherwise cannot reach a vault
    if config.chain is None:
        raise StartupError("chain: missing; the keeper and the vault tools need the [chain] section")
    return config.chain


def _vault_location(config: Config) -> tuple[str, Path | Deployment]:
    settings = _chain_settings(config)
    if settings.deployment is None:
        if settings.vault is None:  # ChainSettings' validator requires exactly one of the two
            raise StartupError("chain: give exactly one of chain.vault and chain.deployment")
        return settings.vault, _bundled_abis()
    try:
        deployment = Deployment.load(settings.deployment)
    except (FileNotFoundError, ValueError) as error:
        raise StartupError(f"chain.deployment: {error}") from error
    if deployment.chain_id != settings.chain_id:
        raise StartupError(f"chain.deployment {settings.deployment} is for chain {deployment.chain_id}, "
                           f"chain.chain_id is {settings.chain_id}")
    return deployment.vault, deployment


def _bundled_abis() -> Path:
    """ABIs compiled from this repo's contracts (cached), for a vault given by address."""
    from chain.artifacts import compile_contracts, write_abis
    from vaultbot.paths import cache_dir

    compiled = compile_contracts()
    directory = cache_dir() / "abi"
    write_abis(compiled, directory)
    return directory


def _check_markets(markets: dict[str, str], reader: VaultReader) -> None:
    listed = set(reader.guardrails().markets)
    unknown = sorted(set(markets.values()) - listed)
    if unknown:
        raise StartupError(f"markets: {', '.join(unknown)} not listed by the vault "
                           f"(it lists {', '.join(sorted(listed))})")


def _training_data(sources: Sources, config: Config, market_pools: list[str], archive: NewsArchive):
    """What a cycle fetches (`sources.inputs`), over the whole /chart history: token prices for all of it, and
    every news item the feeds ever served the keeper."""
    pools = list(dict.fromkeys([*market_pools, *config.model.extra_pools]))
    news = None
    if config.sources.news_feeds:
        news = sources.news.fetch(config.sources.news_feeds).items
        archive.keep(news)
        news = archive.with_kept(news)
    pools_meta = fetch_pools_meta(sources, pools)
    history = fetch_history(sources, pools)
    return with_token_prices(sources, history, pools_meta, *history_days(history)), news, pools_meta
