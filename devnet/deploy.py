"""Deploy the devnet: a 6-decimal mock USDC, N mock markets at realistic rates, and the Vault.

Uses anvil's unlocked default accounts: 0 = admin (and market operator), 1 = keeper,
2 = guardian, 3..5 = depositors holding test USDC. The result is a `Deployment`, saved as JSON
for the keeper, the backtester and the depositor tools.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import TxReceipt

from chain.artifacts import CompiledContracts, write_abis
from chain.deployment import Deployment, MarketInfo
from chain.events import emitted
from chain.params import Param
from config.sections import ServiceSettings
from strategy.guardrails import DEFAULT_CAP_BPS, DEFAULT_GUARDRAILS, DEFAULT_VAULT_LIMITS
from strategy.units import SECONDS_PER_YEAR, WAD

USDC_DECIMALS = 6
USDC = 10**USDC_DECIMALS  # one whole token of the devnet's 6-decimal mock USDC


ADMIN, KEEPER, GUARDIAN = 0, 1, 2
DEPOSITORS = range(3, 6)


class DeploymentError(RuntimeError):
    """A deployment step failed; the message names the step."""


@dataclass(frozen=True)
class MarketPreset:
    name: str
    symbol: str
    apy: float


MARKET_PRESETS = (
    MarketPreset("Aave USDC", "aUSDC", 0.042),
    MarketPreset("Compound USDC", "cUSDC", 0.051),
    MarketPreset("Morpho USDC", "mUSDC", 0.067),
    MarketPreset("Spark USDC", "spUSD", 0.035),
    MarketPreset("Euler USDC", "eUSDC", 0.078),
    MarketPreset("Fluid USDC", "fUSDC", 0.058),
    MarketPreset("Maple USDC", "mpUSD", 0.073),
    MarketPreset("Fraxlend USDC", "fxUSD", 0.046),
)


@dataclass(frozen=True)
class DevnetParams:
    """What the devnet deploys and the vault guardrails it starts with."""

    markets: int = 4
    min_rebalance_interval: int = DEFAULT_GUARDRAILS["min_rebalance_interval"]  # seconds
    max_turnover_bps: int = DEFAULT_GUARDRAILS["max_turnover_bps"]
    max_loss_bps: int = DEFAULT_GUARDRAILS["max_loss_bps"]
    min_idle_bps: int = DEFAULT_GUARDRAILS["min_idle_bps"]
    daily_loss_bps: int = DEFAULT_VAULT_LIMITS["daily_loss_bps"]
    daily_turnover_bps: int = DEFAULT_VAULT_LIMITS["daily_turnover_bps"]
    max_price_growth_bps: int = DEFAULT_VAULT_LIMITS["max_price_growth_bps"]
    market_cap_bps: int = DEFAULT_CAP_BPS
    market_cap_abs: int = 10_000_000 * USDC
    timelock: int = 24 * 3600  # raised last: loosening anything afterwards waits a day
    decimals_offset: int = 12  # 6-decimal asset -> 18-decimal vault shares
    depositor_balance: int = 100_000 * USDC
    # where the devnet keeper's HTTP server (its default host and port) publishes decision bundles
    decisions_uri: str = (f"http://{ServiceSettings.model_fields['metrics_host'].default}:"
                          f"{ServiceSettings.model_fields['metrics_port'].default}")

    def __post_init__(self) -> None:
        if not 1 <= self.markets <= len(MARKET_PRESETS):
            raise ValueError(f"markets must be between 1 and {len(MARKET_PRESETS)}, got {self.markets}")


def apy_to_rate_wad(apy: float) -> int:
    """Per-second rate (1e18 = 100 %/s) that compounds continuously to `apy` over a year."""
    return round(math.log1p(apy) / SECONDS_PER_YEAR * WAD)


class _Deployer:
    """Sends the deployment's transactions from the admin account, naming each step in errors."""

    def __init__(self, w3: Web3, compiled: CompiledContracts) -> None:
        self.w3 = w3
        self.compiled = compiled
        accounts = w3.eth.accounts
        if len(accounts) < max(DEPOSITORS) + 1:
            raise DeploymentError(f"need {max(DEPOSITORS) + 1} unlocked accounts, the node has {len(accounts)}")
        self.accounts = [Web3.to_checksum_address(a) for a in accounts]
        self.admin = self.accounts[ADMIN]
        self.last_block = 0

    def send(self, step: str, call: ContractFunction | ContractConstructor) -> TxReceipt:
        """Send one transaction from the admin; any revert becomes a DeploymentError naming `step`."""
        try:
            tx_hash = call.transact({"from": self.admin})
        except (ContractLogicError, Web3RPCError) as error:
            raise DeploymentError(f"{step} failed: {error}") from error
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise DeploymentError(f"{step} failed: transaction {tx_hash.to_0x_hex()} reverted")
        self.last_block = receipt["blockNumber"]
        return receipt

    def deploy(self, name: str, *args: object, label: str | None = None) -> Contract:
        artifact = self.compiled[name]
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        step = f"deploy {name} {label or ''}".rstrip()
        address = self.send(step, factory.constructor(*args))["contractAddress"]
        if address is None:
            raise DeploymentError(f"{step} failed: its receipt names no contract address")
        return self.w3.eth.contract(address=address, abi=artifact.abi)

    def seed_market(self, token: Contract, market: Contract, amount: int) -> None:
        """The admin deposits `amount` into a new market, as other lenders would have: a market the vault leaves
        entirely keeps a share price (an empty ERC-4626 with assets left over prices its next share at all of them,
        which the vault's accounting rightly reads as a jump it will not trust)."""
        self.send(f"seed {market.address}: mint", token.functions.mint(self.admin, amount))
        self.send(f"seed {market.address}: approve", token.functions.approve(market.address, amount))
        self.send(f"seed {market.address}: deposit", market.functions.deposit(amount, self.admin))

    def set_param(self, vault: Contract, label: str, param: Param, value: int) -> None:
        """Submit a parameter; if the vault queued it (a loosening), accept it (the timelock is still 0)."""
        step = f"set {label}={value}"
        receipt = self.send(f"{step} (submit)", vault.functions.submit_param(param, value))
        if emitted(vault, "ParamSubmitted", receipt):
            self.send(f"{step} (accept)", vault.functions.accept_param(param))

    def list_market(self, vault: Contract, label: str, market: str, cap_bps: int, cap_abs: int) -> None:
        """Submit a market's listing and accept it (the timelock is still 0)."""
        receipt = self.send(f"list {label} (submit)", vault.functions.submit_market(market, cap_bps, cap_abs))
        if emitted(vault, "CapsSubmitted", receipt):
            self.send(f"list {label} (accept)", vault.functions.accept_market(market))

    def set_vault_limits(self, vault: Contract, limits: Mapping[str, int]) -> None:
        """The guardrails by name (`DEFAULT_GUARDRAILS` and `DEFAULT_VAULT_LIMITS` keys), timelock last."""
        for label, value in sorted(limits.items(), key=lambda item: item[0] == "timelock"):
            self.set_param(vault, label, Param[label.upper()], value)


def deploy_devnet(w3: Web3, compiled: CompiledContracts, abi_dir: Path,
                  params: DevnetParams = DevnetParams(), anvil_pid: int | None = None) -> Deployment:
    """Deploy and configure everything on the node behind `w3`; writes the ABIs into abi_dir."""
    rpc_url = _rpc_url(w3)
    d = _Deployer(w3, compiled)
    token = d.deploy("MockToken", "USD Coin", "USDC", USDC_DECIMALS)

    markets = []
    for preset in MARKET_PRESETS[: params.markets]:
        market = d.deploy("MockMarket", token.address, preset.name, preset.symbol, d.admin, label=preset.name)
        d.send(f"set_rate on {preset.name}", market.functions.set_rate(apy_to_rate_wad(preset.apy)))
        d.seed_market(token, market, USDC)
        markets.append((market, preset))

    vault = d.deploy("Vault", token.address, "vaultbot USDC", "vbUSD", params.decimals_offset,
                     d.admin, d.accounts[KEEPER], d.accounts[GUARDIAN], 0)
    for market, preset in markets:
        d.list_market(vault, preset.name, market.address, params.market_cap_bps, params.market_cap_abs)
    # the timelock goes last: a longer one is a tightening, so it applies at once and guards everything before it
    d.set_vault_limits(vault, {name: getattr(params, name) for name in (*DEFAULT_GUARDRAILS, *DEFAULT_VAULT_LIMITS,
                                                                          "timelock")})

    d.send("set_decisions_uri", vault.functions.set_decisions_uri(params.decisions_uri))

    depositors: list[str] = [d.accounts[i] for i in DEPOSITORS]
    for depositor in depositors:
        d.send(f"mint test USDC to {depositor}", token.functions.mint(depositor, params.depositor_balance))

    try:
        write_abis(compiled, abi_dir)
    except OSError as error:  # a file where abi/ belongs, a read-only disk
        raise DeploymentError(f"writing the ABIs to {abi_dir} failed: {error.strerror or error}") from None
    return Deployment(
        rpc_url=rpc_url,
        chain_id=w3.eth.chain_id,
        asset=token.address,
        vault=vault.address,
        markets=[MarketInfo(address=m.address, name=p.name, apy=p.apy) for m, p in markets],
        admin=d.admin,
        keeper=d.accounts[KEEPER],
        guardian=d.accounts[GUARDIAN],
        depositors=depositors,
        abi_dir=str(abi_dir.resolve()),
        deployed_at=d.last_block,
        anvil_pid=anvil_pid,
    )


def _rpc_url(w3: Web3) -> str:
    """The node's URL, which the deployment records: the devnet is deployed over HTTP."""
    provider = w3.provider
    if not isinstance(provider, HTTPProvider) or provider.endpoint_uri is None:
        raise DeploymentError(f"the devnet is deployed over an HTTP RPC with a URL, not through "
                              f"{type(provider).__name__}")
    return provider.endpoint_uri
