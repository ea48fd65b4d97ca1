"""The chain of a chain-mode backtest: anvil on 127.0.0.1, the backtest's vault and markets deployed once, and an
anvil snapshot that every strategy starts from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import requests
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from backtest.chain.vault import ChainContracts, ChainVault, rpc
from backtest.engine import Setup
from backtest.errors import ChainModeError, UsageError
from keeper.chain.anvil import AnvilConfig, AnvilError, AnvilProcess, rpc_call
from keeper.chain.artifacts import CompiledContracts, compile_contracts
from keeper.chain.deploy import (
    DEPOSITORS,
    GUARDIAN,
    PARAM_MAX_LOSS_BPS,
    PARAM_MAX_TURNOVER_BPS,
    PARAM_MIN_IDLE_BPS,
    PARAM_MIN_REBALANCE_INTERVAL,
    DeploymentError,
    _Deployer,
)
from keeper.chain.tx import TxSender
from keeper.chain.vault import VaultReader

DAY = 24 * 3600
SHARE_DECIMALS = 18  # the vault's shares; its decimals offset is this less the asset's decimals
KEEPER_KEY = keccak(b"vaultbot backtest keeper")  # a fixed local key: TxSender signs, as the keeper does
ETH_FOR_GAS = 10**24  # wei given to every account that sends: gas is never what stops a backtest
FORK_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ChainOptions:
    """Chain mode on a fresh anvil, or fork mode (`fork_url` and `fork_block` together)."""

    fork_url: str | None = None
    fork_block: int | None = None

    def __post_init__(self) -> None:
        if (self.fork_url is None) != (self.fork_block is None):
            raise UsageError("--fork-url and --fork-block go together: give both or neither")
        if self.fork_block is not None and self.fork_block < 0:
            raise UsageError(f"--fork-block must be >= 0, got {self.fork_block}")

    @property
    def mode(self) -> str:
        return "chain" if self.fork_url is None else "fork"


class ChainWorld:
    """anvil with the backtest's contracts; `vault(strategy)` returns a `ChainVault` on the fresh deployment.

    `markets`: addresses of MockMarkets already on the (forked) chain, one per pool in `setup.pools` order,
    to list instead of deploying new ones; their operators are impersonated to set rates and losses.
    """

    def __init__(self, setup: Setup, options: ChainOptions = ChainOptions(),
                 markets: Sequence[str] | None = None) -> None:
        if markets is not None and len(markets) != len(setup.pools):
            raise UsageError(f"{len(markets)} markets given for {len(setup.pools)} pools")
        self.setup, self.options, self.existing = setup, options, markets
        self.anvil: AnvilProcess | None = None
        self.contracts: ChainContracts | None = None
        self._snapshot: str | None = None

    def __enter__(self) -> Self:
        if self.options.fork_url is not None:
            _probe_fork(self.options.fork_url, self.options.fork_block)
        first = int(self.setup.days[0].timestamp())
        config = (AnvilConfig(fork_url=self.options.fork_url, fork_block_number=self.options.fork_block)
                  if self.options.fork_url is not None else AnvilConfig(timestamp=first - DAY))
        try:
            self.anvil = AnvilProcess(config).start()
        except AnvilError as error:
            raise ChainModeError(f"cannot start anvil: {str(error).splitlines()[0]}") from None
        try:
            # eth_chainId answered from web3's cache: otherwise every call asks it again (3 requests per call)
            w3 = Web3(Web3.HTTPProvider(self.anvil.rpc_url, cache_allowed_requests=True))
            self.contracts = self._deploy(w3, compile_contracts())
        except BaseException:
            self.anvil.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.anvil is not None:
            self.anvil.stop()

    def vault(self, strategy: str) -> ChainVault:
        """A `ChainVault` for `strategy` on the deployment as it was before any strategy ran."""
        if self.contracts is None:
            raise ChainModeError("the chain is not started: use ChainWorld as a context manager")
        if self._snapshot is not None:
            self.contracts.rpc("evm_revert", self._snapshot)
        self._snapshot = self.contracts.rpc("evm_snapshot")
        vault = ChainVault(self.setup, self.contracts, strategy)
        vault.start()
        return vault

    # -- deployment -------------------------------------------------------------------------------------

    def _deploy(self, w3: Web3, compiled: CompiledContracts) -> ChainContracts:
        setup, settings = self.setup, self.setup.settings
        try:
            d = _Deployer(w3, compiled)
            token, markets, operators = self._markets(w3, d, compiled)
            keeper = Account.from_key(KEEPER_KEY)
            vault = d.deploy("Vault", token.address, "vaultbot backtest", "vbBT",
                             max(0, SHARE_DECIMALS - settings.asset_decimals), d.admin, keeper.address,
                             d.accounts[GUARDIAN], 0)
            for pool, market in zip(setup.pools, markets, strict=True):
                limits = setup.guardrails.markets[pool]
                d.submit_and_accept(f"list the market of pool {pool}", vault, vault.functions.submit_market,
                                    vault.functions.accept_market, market.address, limits.cap_bps, limits.cap_abs)
            guardrails = setup.guardrails
            for label, param, value in (
                ("min_rebalance_interval", PARAM_MIN_REBALANCE_INTERVAL, guardrails.min_rebalance_interval),
                ("max_turnover_bps", PARAM_MAX_TURNOVER_BPS, guardrails.max_turnover_bps),
                ("max_loss_bps", PARAM_MAX_LOSS_BPS, guardrails.max_loss_bps),
                ("min_idle_bps", PARAM_MIN_IDLE_BPS, guardrails.min_idle_bps),
            ):
                d.submit_and_accept(f"set {label}={value}", vault, vault.functions.submit_param,
                                    vault.functions.accept_param, param, value)
            contracts = ChainContracts(w3=w3, vault=vault, token=token, markets=markets, operators=operators,
                                       admin=d.admin, reader=VaultReader(w3, vault.address),
                                       sender=TxSender(w3, keeper, max_fee_gwei=10_000, receipt_timeout_s=30,
                                                       poll_s=0.05),
                                       origin=0)
            for account in {keeper.address, *operators}:
                contracts.rpc("anvil_setBalance", account, hex(ETH_FOR_GAS))
            depositor = d.accounts[DEPOSITORS[0]]
            contracts.transact(token.functions.mint(depositor, setup.capital), d.admin, "mint the capital")
            contracts.transact(token.functions.approve(vault.address, setup.capital), depositor, "approve the vault")
            contracts.transact(vault.functions.deposit(setup.capital, depositor), depositor, "deposit the capital")
        except DeploymentError as error:
            raise ChainModeError(f"deploying the backtest vault: {error}") from None
        latest = w3.eth.get_block("latest")["timestamp"]
        # the first day on chain: the window's own date on a fresh chain, the next whole day after a fork's head
        first = int(setup.days[0].timestamp())
        return contracts.at_origin(max(first, math.ceil((latest + 1) / DAY) * DAY))

    def _markets(self, w3: Web3, d: _Deployer,
                 compiled: CompiledContracts) -> tuple[Contract, list[Contract], list[str]]:
        """The asset, one market per pool and each market's operator: new ones, or the given existing ones."""
        abi = compiled["MockMarket"].abi
        token_abi = compiled["MockToken"].abi
        decimals = self.setup.settings.asset_decimals
        if self.existing is None:
            token = d.deploy("MockToken", "Backtest USD", "BTUSD", decimals)
            markets = [d.deploy("MockMarket", token.address, f"backtest pool {i}", f"BT{i}", d.admin, label=pool)
                       for i, pool in enumerate(self.setup.pools)]
            return token, markets, [d.admin] * len(markets)
        markets = [w3.eth.contract(address=Web3.to_checksum_address(a), abi=abi) for a in self.existing]
        assets = {market.functions.asset().call() for market in markets}
        if len(assets) != 1:
            raise ChainModeError(f"the given markets hold {len(assets)} different assets; they must share one")
        token = w3.eth.contract(address=assets.pop(), abi=token_abi)
        if token.functions.decimals().call() != decimals:
            raise ChainModeError(f"the markets' asset has {token.functions.decimals().call()} decimals; "
                                 f"set [backtest] asset_decimals to match")
        operators = [market.functions.operator().call() for market in markets]
        for operator in set(operators):
            rpc(w3, "anvil_impersonateAccount", operator)
        return token, markets, operators


def _probe_fork(url: str, block: int | None) -> None:
    """The fork RPC must answer and have `block`: checked before anvil starts, for a one-line error."""
    try:
        head = int(str(rpc_call(url, "eth_blockNumber", timeout=FORK_PROBE_TIMEOUT_S)), 16)
    except (requests.RequestException, AnvilError, ValueError, TypeError) as error:
        reason = type(error).__name__ if isinstance(error, requests.RequestException) else str(error)
        raise ChainModeError(f"--fork-url {url}: no JSON-RPC answers there ({reason})") from None
    if block is not None and block > head:
        raise ChainModeError(f"--fork-block {block} is beyond the head of {url} (block {head})")
