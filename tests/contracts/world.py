"""A configured vault on titanoboa's in-process EVM: token, markets, vault and role accounts.

Shared by the contract tests and benchmarks/gas.py. Deployment follows the order
contracts/README.md implies: deploy with timelock 0, so listing markets and the
loosening parameters (loss, fee) can be queued and accepted at once, then set the
real timelock last (a tightening, which applies immediately).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import boa
from boa.contracts.vyper.vyper_contract import VyperContract, VyperDeployer

from chain.params import Param
from strategy.guardrails import Guardrails, MarketLimits, VaultState
from strategy.units import BPS, SECONDS_PER_DAY, UINT256_MAX, WAD

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
TEST_CONTRACTS = Path(__file__).resolve().parent
USDC = 10**6  # one whole token of the 6-decimal mock asset
DAY = SECONDS_PER_DAY
MAX_UINT256 = UINT256_MAX


BASE_PARAMS: dict[Param, int] = {
    Param.MIN_REBALANCE_INTERVAL: 3_600,
    Param.MAX_TURNOVER_BPS: 5_000,
    Param.MAX_LOSS_BPS: 10,
    Param.MIN_IDLE_BPS: 500,
    Param.DEPOSIT_LIMIT: 10_000_000 * USDC,
    Param.PERFORMANCE_FEE_BPS: 1_000,
    Param.DAILY_LOSS_BPS: 30,
    Param.DAILY_TURNOVER_BPS: 20_000,
    Param.MAX_PRICE_GROWTH_BPS: 10_000,
    Param.TIMELOCK: DAY,
}
BASE_CAP_BPS = 5_000
BASE_CAP_ABS = 5_000_000 * USDC
DEPOSITOR_FUNDS = 5_000_000 * USDC


@dataclass(frozen=True)
class Accounts:
    admin: str
    keeper: str
    guardian: str
    operator: str
    fee_recipient: str
    alice: str
    bob: str

    @classmethod
    def generate(cls) -> Accounts:
        return cls(*(boa.env.generate_address(name) for name in cls.__dataclass_fields__))

    @property
    def depositors(self) -> tuple[str, str]:
        return (self.alice, self.bob)


@dataclass(frozen=True)
class World:
    accounts: Accounts
    token: VyperContract
    markets: list[VyperContract]
    vault: VyperContract


@cache
def deployer(contract: str) -> VyperDeployer:
    """The compiled contract `contracts/<contract>.vy`, compiled once per process."""
    return boa.load_partial(str(CONTRACTS / f"{contract}.vy"))


@cache
def local_deployer(contract: str) -> VyperDeployer:
    """The compiled test-only contract `tests/contracts/<contract>.vy`, compiled once per process."""
    return boa.load_partial(str(TEST_CONTRACTS / f"{contract}.vy"))


def deploy_token() -> VyperContract:
    return deployer("MockToken").deploy("USD Coin", "USDC", 6)


def deploy_market(token: VyperContract, operator: str, index: int) -> VyperContract:
    return deployer("MockMarket").deploy(token.address, f"Market {index}", f"mkt{index}", operator)


def deploy_hostile_market(token: VyperContract, operator: str, index: int) -> VyperContract:
    """A market the operator can switch into misbehaving (tests/contracts/HostileMarket.vy)."""
    return local_deployer("HostileMarket").deploy(token.address, f"Hostile {index}", f"hst{index}", operator)


def deploy_vault(
    token: VyperContract, accounts: Accounts, decimals_offset: int = 3, timelock: int = 0
) -> VyperContract:
    return deployer("Vault").deploy(
        token.address, "Vault USDC", "vUSDC", decimals_offset, accounts.admin, accounts.keeper, accounts.guardian,
        timelock,
    )


def events(contract: VyperContract, name: str) -> list:
    """The decoded `name` events (from any contract) of `contract`'s last call; read them before any other call
    to it."""
    return [log for log in contract.get_logs() if type(log).__name__ == name]


def apply_param(vault: VyperContract, admin: str, param: Param, value: int) -> None:
    """Sets a parameter, waiting out the timelock when the change is a loosening."""
    with boa.env.prank(admin):
        vault.submit_param(param, value)
    if events(vault, "ParamSubmitted"):
        boa.env.time_travel(seconds=vault.timelock())
        with boa.env.prank(admin):
            vault.accept_param(param)


def list_market(vault: VyperContract, admin: str, market: VyperContract, cap_bps: int, cap_abs: int) -> None:
    """Lists a market or changes its caps, waiting out the timelock when the change is queued (listing, raising)."""
    with boa.env.prank(admin):
        vault.submit_market(market.address, cap_bps, cap_abs)
    if events(vault, "CapsSubmitted"):
        boa.env.time_travel(seconds=vault.timelock())
        with boa.env.prank(admin):
            vault.accept_market(market.address)


def fund(token: VyperContract, vault: VyperContract, holder: str, amount: int) -> None:
    """Mints `amount` to `holder` and gives the vault an unlimited allowance."""
    token.mint(holder, amount)
    with boa.env.prank(holder):
        token.approve(vault.address, MAX_UINT256)


def deploy_world(
    n_markets: int = 3,
    decimals_offset: int = 3,
    params: dict[Param, int] = BASE_PARAMS,
    cap_bps: int = BASE_CAP_BPS,
    cap_abs: int = BASE_CAP_ABS,
) -> World:
    """Token, `n_markets` markets listed with the given caps, a vault with `params` and funded depositors."""
    accounts = Accounts.generate()
    token = deploy_token()
    markets = [deploy_market(token, accounts.operator, i) for i in range(n_markets)]
    vault = deploy_vault(token, accounts, decimals_offset, timelock=0)
    for market in markets:
        list_market(vault, accounts.admin, market, cap_bps, cap_abs)
    with boa.env.prank(accounts.admin):
        vault.set_fee_recipient(accounts.fee_recipient)
    for param, value in params.items():
        apply_param(vault, accounts.admin, param, value)
    for depositor in accounts.depositors:
        fund(token, vault, depositor, DEPOSITOR_FUNDS)
    return World(accounts, token, markets, vault)


def rebalance(world: World, targets: dict[VyperContract, int], decision_hash: bytes = b"\x00" * 32) -> None:
    """Calls `rebalance` as the keeper with target positions per market."""
    allocations = [(market.address, assets) for market, assets in targets.items()]
    with boa.env.prank(world.accounts.keeper):
        world.vault.rebalance(allocations, decision_hash)


def positions(world: World) -> list[int]:
    return [world.vault.position(market.address) for market in world.markets]


def idle(world: World) -> int:
    return world.token.balanceOf(world.vault.address)


def read_guardrails(vault: VyperContract) -> Guardrails:
    """The vault's rebalance parameters and listed markets, as the Python mirror of its checks takes them."""
    caps = {market: MarketLimits(*vault.market_config(market)[1:]) for market in vault.markets()}
    return Guardrails(
        min_rebalance_interval=vault.min_rebalance_interval(),
        max_turnover_bps=vault.max_turnover_bps(),
        max_loss_bps=vault.max_loss_bps(),
        min_idle_bps=vault.min_idle_bps(),
        markets=caps,
    )


def read_state(vault: VyperContract, token: VyperContract) -> VaultState:
    """Idle, every listed market's position, the last rebalance and the pause flag, read from the chain."""
    return VaultState(
        idle=token.balanceOf(vault.address),
        positions={market: vault.position(market) for market in vault.markets()},
        last_rebalance=vault.last_rebalance(),
        paused=vault.paused(),
    )
