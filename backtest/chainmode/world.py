"""The chain of a chain-mode backtest: anvil on 127.0.0.1, the backtest's vault and markets deployed once, and an
anvil snapshot that every strategy starts from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType, TracebackType
from typing import Self

import requests
from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils import (
    is_checksum_address,
    is_checksum_formatted_address,
    is_hex_address,
    keccak,
)
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception

from backtest.chainmode.chain_vault import DAY_BLOCK_GAS, ChainContracts, ChainVault, rpc
from backtest.chainmode.transport import LocalHTTPProvider
from backtest.engine import Setup
from backtest.errors import ChainModeError, UsageError
from chain.artifacts import CompiledContracts, compile_contracts
from chain.tx import TxSender
from chain.vault_reader import AbiCodec, VaultReader
from devnet.anvil import AnvilConfig, AnvilError, AnvilProcess, rpc_call
from devnet.deploy import (
    DEPOSITORS,
    GUARDIAN,
    DeploymentError,
    _Deployer,
)
from strategy.guardrails import DEFAULT_GUARDRAILS, DEFAULT_VAULT_LIMITS, MAX_RATE_BPS
from strategy.units import SECONDS_PER_DAY

SHARE_DECIMALS = 18  # the vault's shares; its decimals offset is this less the asset's decimals
KEEPER_KEY = keccak(b"vaultbot backtest keeper")  # a fixed local key: TxSender signs, as the keeper does
ETH_FOR_GAS = 10**24  # wei given to every account that sends: gas is never what stops a backtest
FORK_PROBE_TIMEOUT_S = 10.0
FEE_PER_BPS = 10**14  # MockMarket.deposit_fee: 1e18 = 100 %


@dataclass(frozen=True)
class ChainOptions:
    """Chain mode on a fresh anvil, or fork mode (`fork_url` and `fork_block` together).

    `markets` (fork mode only): pool id -> address of a MockMarket already on the forked chain, for every pool
    of the backtest, to list instead of deploying new markets; their operators are impersonated.
    """

    fork_url: str | None = None
    fork_block: int | None = None
    markets: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.fork_url is None) != (self.fork_block is None):
            raise UsageError("`fork_url` and `fork_block` go together: give both or neither", "fork_url", "fork_block")
        if self.fork_block is not None and self.fork_block < 0:
            raise UsageError(f"`fork_block` must be >= 0, got {self.fork_block}", "fork_block")
        if self.markets is not None:
            # frozen: the checksummed copy replaces the caller's mapping
            object.__setattr__(self, "markets", MappingProxyType(self._checked_markets(self.markets)))

    def _checked_markets(self, markets: Mapping[str, str]) -> dict[str, str]:
        if self.fork_url is None:
            raise UsageError("`fork_market` lists markets already on a forked chain: give `fork_url` and "
                             "`fork_block` too", "fork_market", "fork_url", "fork_block")
        checked: dict[str, str] = {}
        for pool, address in markets.items():
            if not is_hex_address(address):
                raise UsageError(f"`fork_market` {pool}={address}: not an address (0x and 40 hex digits)",
                                 "fork_market")
            if is_checksum_formatted_address(address) and not is_checksum_address(address):  # mixed case
                raise UsageError(f"`fork_market` {pool}={address}: the mixed-case checksum is wrong (a typo?); "
                                 f"check the address, or give it in lower case", "fork_market")
            address = Web3.to_checksum_address(address)
            if address in checked.values():
                other = next(p for p, a in checked.items() if a == address)
                raise UsageError(f"`fork_market`: pools {other} and {pool} name the same market {address}; "
                                 f"each pool needs its own", "fork_market")
            checked[pool] = address
        return checked

    @property
    def mode(self) -> str:
        return "chain" if self.fork_url is None else "fork"


class ChainWorld:
    """anvil with the backtest's contracts; `vault(strategy)` returns a `ChainVault` on the fresh deployment.

    Markets it deploys charge `[strategy.costs] slippage_bps` as their deposit fee; markets already on a fork
    (`ChainOptions.markets`, one for every pool of `setup`) keep the fee they have.
    """

    def __init__(self, setup: Setup, options: ChainOptions = ChainOptions()) -> None:
        if options.markets is not None:
            _check_covers(options.markets, setup.pools)
        self.deposit_fee = deposit_fee_for(setup.costs.slippage_bps)
        self.setup, self.options = setup, options
        self.anvil: AnvilProcess | None = None
        self.contracts: ChainContracts | None = None
        self._snapshot: str | None = None

    def __enter__(self) -> Self:
        if self.options.fork_url is not None:
            _probe_fork(self.options.fork_url, self.options.fork_block)
        first = int(self.setup.days[0].timestamp())
        config = (AnvilConfig(fork_url=self.options.fork_url, fork_block_number=self.options.fork_block)
                  if self.options.fork_url is not None else AnvilConfig(timestamp=first - SECONDS_PER_DAY))
        try:
            self.anvil = AnvilProcess(config).start()
        except AnvilError as error:
            raise ChainModeError(f"cannot start anvil: {str(error).splitlines()[0]}") from None
        try:
            # eth_chainId answered from web3's cache: otherwise every call asks it again (3 requests per call)
            w3 = Web3(LocalHTTPProvider(self.anvil.rpc_url, cache_allowed_requests=True))
            rpc(w3, "evm_setBlockGasLimit", hex(DAY_BLOCK_GAS))  # a day's block holds every market's calls
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
                d.list_market(vault, f"the market of pool {pool}", market.address, limits.cap_bps, limits.cap_abs)
            guardrails = setup.guardrails
            # The fast mode models neither the daily budgets (no guardian approves anything in a replay) nor
            # the bound on a market's accepted price growth (a peg recovery can lift a price faster than any
            # yield): both are left at their loosest so that the two modes decide alike.
            d.set_vault_limits(vault, {**{name: getattr(guardrails, name) for name in DEFAULT_GUARDRAILS},
                                       **dict.fromkeys(DEFAULT_VAULT_LIMITS, MAX_RATE_BPS)})
            # anvil mines an automined transaction a moment after taking it: the keeper's sender asks for the
            # receipt again after a millisecond, not 50 (a rebalance would wait longer than anvil works on it)
            contracts = ChainContracts(w3=w3, vault=vault, token=token, markets=markets, operators=operators,
                                       admin=d.admin, reader=VaultReader(w3, vault.address),
                                       sender=TxSender(w3, keeper, chain_id=w3.eth.chain_id, max_fee_gwei=10_000,
                                                       receipt_timeout_s=30, poll_s=0.001),
                                       origin=0, market_codec=AbiCodec(compiled["MockMarket"].abi),
                                       token_codec=AbiCodec(compiled["MockToken"].abi),
                                       vault_codec=AbiCodec(compiled["Vault"].abi))
            for account in {keeper.address, d.admin, *operators}:
                contracts.rpc("anvil_setBalance", account, hex(ETH_FOR_GAS))
            depositor = d.accounts[DEPOSITORS[0]]
            contracts.transact(token.functions.mint(depositor, setup.capital), d.admin, "mint the capital")
            contracts.transact(token.functions.approve(vault.address, setup.capital), depositor, "approve the vault")
            contracts.transact(vault.functions.deposit(setup.capital, depositor), depositor, "deposit the capital")
            # anvil signs nothing for an impersonated sender: the days' market transactions cost a fifth
            for account in {d.admin, *operators}:
                contracts.rpc("anvil_impersonateAccount", account)
        except DeploymentError as error:
            raise ChainModeError(f"deploying the backtest vault: {error}") from None
        latest = w3.eth.get_block("latest")["timestamp"]
        # the first day on chain: the window's own date on a fresh chain, the next whole day after a fork's head
        first = int(setup.days[0].timestamp())
        return contracts.at_origin(max(first, math.ceil((latest + 1) / SECONDS_PER_DAY) * SECONDS_PER_DAY))

    def _markets(self, w3: Web3, d: _Deployer,
                 compiled: CompiledContracts) -> tuple[Contract, list[Contract], list[str]]:
        """The asset, one market per pool and each market's operator: new ones, or the given existing ones."""
        abi = compiled["MockMarket"].abi
        token_abi = compiled["MockToken"].abi
        decimals = self.setup.settings.asset_decimals
        if self.options.markets is None:
            token = d.deploy("MockToken", "Backtest USD", "BTUSD", decimals)
            markets = [d.deploy("MockMarket", token.address, f"backtest pool {i}", f"BT{i}", d.admin, label=pool)
                       for i, pool in enumerate(self.setup.pools)]
            for market in markets:
                d.seed_market(token, market, 10**decimals)
            self._set_deposit_fee(d, markets)
            return token, markets, [d.admin] * len(markets)
        given = self.options.markets
        markets = [w3.eth.contract(address=Web3.to_checksum_address(given[pool]), abi=abi) for pool in self.setup.pools]
        assets = {_market_asset(w3, pool, market) for pool, market in zip(self.setup.pools, markets, strict=True)}
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

    def _set_deposit_fee(self, d: _Deployer, markets: list[Contract]) -> None:
        """Slippage on chain: every supply pays `slippage_bps` of itself (rounded up) to the market's operator."""
        if self.deposit_fee == 0:
            return
        maximum = markets[0].functions.MAX_DEPOSIT_FEE().call()
        if self.deposit_fee > maximum:
            raise ChainModeError(f"[strategy.costs] slippage_bps = {self.setup.costs.slippage_bps:g}: chain mode "
                                 f"charges it as a MockMarket deposit fee, which is at most "
                                 f"{maximum / FEE_PER_BPS:g} bps")
        for pool, market in zip(self.setup.pools, markets, strict=True):
            d.send(f"set the deposit fee of pool {pool}", market.functions.set_deposit_fee(self.deposit_fee))


def deposit_fee_for(slippage_bps: float) -> int:
    """MockMarket's `deposit_fee` for `slippage_bps`, read as the decimal the config wrote (2.5 is exactly 2.5e14),
    so a supply pays ceil(supplied · slippage_bps / 10⁴) exactly, as fast mode's `backtest.execution` charges it
    (there in floats: for a decimal with no exact binary form the two may differ by a unit at a rounding edge)."""
    fee = Fraction(repr(slippage_bps)) * FEE_PER_BPS
    if fee.denominator != 1:
        raise ChainModeError(f"[strategy.costs] slippage_bps = {slippage_bps!r}: chain mode charges it as a MockMarket "
                             f"deposit fee, in steps of 1e-14 bps; give it with at most 14 decimals")
    return int(fee)


def _check_covers(markets: Mapping[str, str], pools: list[str]) -> None:
    """The fork's markets must name every pool of the backtest, and only those."""
    unknown = [pool for pool in markets if pool not in pools]
    if unknown:
        raise UsageError(f"`fork_market`: {', '.join(unknown)} not among the backtest's pools ({', '.join(pools)})",
                         "fork_market")
    missing = [pool for pool in pools if pool not in markets]
    if missing:
        raise UsageError(f"`fork_market`: no market for pool(s) {', '.join(missing)}; give one for every pool of "
                         f"the backtest, or none to deploy new markets", "fork_market")


def _market_asset(w3: Web3, pool: str, market: Contract) -> ChecksumAddress:
    """The asset of an existing market; a clear error when there is no MockMarket at its address."""
    where = f"`fork_market` {pool}={market.address}"
    if not w3.eth.get_code(market.address):
        raise ChainModeError(f"{where}: no contract at that address on the fork", "fork_market")
    try:
        return Web3.to_checksum_address(market.functions.asset().call())
    except Web3Exception:
        raise ChainModeError(f"{where}: not a MockMarket (it has no asset())", "fork_market") from None


def _probe_fork(url: str, block: int | None) -> None:
    """The fork RPC must answer and have `block`: checked before anvil starts, for a one-line error."""
    try:
        head = int(str(rpc_call(url, "eth_blockNumber", timeout=FORK_PROBE_TIMEOUT_S)), 16)
    except (requests.RequestException, AnvilError, ValueError, TypeError) as error:
        reason = type(error).__name__ if isinstance(error, requests.RequestException) else str(error)
        raise ChainModeError(f"`fork_url` {url}: no JSON-RPC answers there ({reason})", "fork_url") from None
    if block is not None and block > head:
        raise ChainModeError(f"`fork_block` {block} is beyond the head of {url} (block {head})", "fork_block")
