"""Gas used by the Vault's depositor and keeper actions, with 2, 5 and 10 listed markets.

    python -m benchmarks.gas

Runs on titanoboa's in-process EVM (no node needed). Every number is transaction gas as a receipt
reports it: 21 000 + calldata (EIP-2028, EIP-7623 floor) + execution, with storage and warm/cold
access starting fresh for each transaction and refunds capped at a fifth (EIP-3529). Checked equal
to anvil 1.7.1's `gasUsed` for deposits, rebalances and withdrawals that pull from markets.

The vault is in a steady state: markets earn 5 % a year, an hour passes before every action (so each
one also mints the performance fee), and the depositors and the fee recipient already hold shares.
Only the first rebalance fills empty markets (their storage goes from zero to non-zero).
"""

from __future__ import annotations

import boa
from boa.contracts.vyper.vyper_contract import VyperContract
from rich.console import Console
from rich.table import Table

from tests.contracts.world import (
    BASE_PARAMS,
    USDC,
    WAD,
    Param,
    deploy_world,
    idle,
    positions,
)

MARKET_COUNTS = (2, 5, 10)
HOUR = 3_600
FIVE_PERCENT_A_YEAR = WAD * 5 // 100 // (365 * 86_400)
# Loose enough for one rebalance to move 90 % of the vault; every market may take it all.
PARAMS = {**BASE_PARAMS, Param.MAX_TURNOVER_BPS: 10_000, Param.DEPOSIT_LIMIT: 10**30}
CAPS = {"cap_bps": 10_000, "cap_abs": 10**30}
INVESTED_BPS = 9_000  # of totalAssets, spread evenly; the rest stays idle (floor 5 %)


def transaction_gas(contract: VyperContract, function: str, args: tuple, sender: str) -> int:
    """Calls `contract.function(*args)` as a transaction from `sender`; returns its receipt's gasUsed.

    Arguments must be computed beforehand: any call made after the state is locked would warm up
    the accounts and storage slots the measured transaction then finds cheap.
    """
    boa.env.evm.vm.state.lock_changes()  # a new transaction: original storage values and access sets reset
    with boa.env.prank(sender):
        getattr(contract, function)(*args)
    computation = contract._computation
    data = bytes(computation.msg.data)
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    gas = 21_000 + 4 * zeros + 16 * nonzeros + computation.get_gas_used()
    gas -= min(computation.get_gas_refund(), gas // 5)
    return max(gas, 21_000 + 10 * (zeros + 4 * nonzeros))


def measure(n_markets: int) -> dict[str, int]:
    """Gas per action on a fresh vault with `n_markets` markets, in the order the actions run."""
    world = deploy_world(n_markets=n_markets, params=PARAMS, **CAPS)
    vault, accounts = world.vault, world.accounts
    alice, bob, keeper = accounts.alice, accounts.bob, accounts.keeper
    for market in world.markets:
        with boa.env.prank(accounts.operator):
            market.set_rate(FIVE_PERCENT_A_YEAR)
    with boa.env.prank(alice):
        vault.deposit(1_000_000 * USDC, alice)
    with boa.env.prank(bob):
        vault.deposit(1_000 * USDC, bob)

    gas: dict[str, int] = {}

    def step(action: str, function: str, args: tuple, sender: str) -> None:
        boa.env.time_travel(seconds=HOUR)
        gas[action] = transaction_gas(vault, function, args, sender)

    def rebalance_to(targets: list[int]) -> tuple:
        return ([(market.address, target) for market, target in zip(world.markets, targets, strict=True)], b"\x00" * 32)

    share = vault.totalAssets() * INVESTED_BPS // 10_000 // n_markets
    step("rebalance: idle into empty markets", "rebalance", rebalance_to([share] * n_markets), keeper)
    boa.env.time_travel(seconds=HOUR)
    # Gains count once reported: this report mints the first fee shares, so the fee
    # recipient's balance is no longer zero when the measured actions mint theirs.
    with boa.env.prank(keeper):
        vault.report()
    step("deposit", "deposit", (10_000 * USDC, bob), bob)
    step("mint", "mint", (vault.previewDeposit(10_000 * USDC), bob), bob)
    step("withdraw, served from idle", "withdraw", (5_000 * USDC, bob, bob), bob)
    step("redeem, served from idle", "redeem", (vault.balanceOf(bob) // 4, bob, bob), bob)
    # every even-numbered market gives a fifth of its position to the next one
    before = positions(world)
    reshuffled = [p - p // 5 if i % 2 == 0 else p + before[i - 1] // 5 for i, p in enumerate(before)]
    step("rebalance: reshuffle among every market", "rebalance", rebalance_to(reshuffled), keeper)
    step("report: every market valued anew", "report", (), keeper)
    from_first = idle(world) + positions(world)[0] // 2
    step("withdraw, pulling from 1 market", "withdraw", (from_first, alice, alice), alice)
    held = positions(world)
    from_every = idle(world) + sum(held[:-1]) + held[-1] // 2
    step("withdraw, pulling from every market", "withdraw", (from_every, alice, alice), alice)
    return gas


def main() -> None:
    results = {n: measure(n) for n in MARKET_COUNTS}
    table = Table(title="Vault gas per transaction (receipt gasUsed)")
    table.add_column("action")
    for n in MARKET_COUNTS:
        table.add_column(f"{n} markets", justify="right")
    for action in results[MARKET_COUNTS[0]]:
        table.add_row(action, *(f"{results[n][action]:,}" for n in MARKET_COUNTS))
    Console().print(table)


if __name__ == "__main__":
    main()
