"""A stolen keeper key churns the vault through markets that charge an entry fee, at every cooldown, for a month.

Under the devnet's limits (0.1 % loss per rebalance and per rolling day, an hour's cooldown, 50 % turnover per
rebalance and 2x the vault per day) the keeper moves funds back and forth between two markets that keep 1 % of
every deposit, each time sized to the largest loss the vault still allows. Without the daily budgets this costs
~2.4 % a day; with them, the loss by time T after the first move is at most
    daily_loss_bps / 10 000 x total x (1 + T / 1 day),
the budget full at the start plus what it refills. Run with -s to see the measured numbers.
"""

from itertools import pairwise

import boa
from boa.contracts.base_evm_contract import BoaError

from strategy.guardrails import DEFAULT_CAP_BPS, DEFAULT_GUARDRAILS, DEFAULT_VAULT_LIMITS
from tests.contracts.world import BPS, DAY, USDC, WAD, Param, World, apply_param, deploy_world, idle

K = 1_000 * USDC
HOUR = 3_600
FEE = WAD // 100  # 1 % of every deposit leaves the market
FRACTION = 10**18
DEVNET = {
    Param.MIN_REBALANCE_INTERVAL: DEFAULT_GUARDRAILS["min_rebalance_interval"],
    Param.MAX_TURNOVER_BPS: DEFAULT_GUARDRAILS["max_turnover_bps"],
    Param.MAX_LOSS_BPS: DEFAULT_GUARDRAILS["max_loss_bps"],
    Param.MIN_IDLE_BPS: DEFAULT_GUARDRAILS["min_idle_bps"],
    Param.DAILY_LOSS_BPS: DEFAULT_VAULT_LIMITS["daily_loss_bps"],
    Param.DAILY_TURNOVER_BPS: DEFAULT_VAULT_LIMITS["daily_turnover_bps"],
    Param.MAX_PRICE_GROWTH_BPS: DEFAULT_VAULT_LIMITS["max_price_growth_bps"],
    Param.TIMELOCK: DAY,
}
# What a market's share conversions may cost per move, beyond the fee.
ROUNDING_WEI = 10


def devnet_world() -> World:
    world = deploy_world(n_markets=2, params=DEVNET, cap_bps=DEFAULT_CAP_BPS)
    assert (world.vault.daily_loss_bps(), world.vault.max_loss_bps(), world.vault.min_rebalance_interval()) == (
        10, 10, HOUR)
    with boa.env.prank(world.accounts.operator):
        for market in world.markets:
            market.set_deposit_fee(FEE)
    with boa.env.prank(world.accounts.alice):
        world.vault.deposit(1_000 * K, world.accounts.alice)
    return world


def real_value(world: World) -> int:
    """What depositors really own: idle plus each position at the market's price (the fees have left)."""
    vault = world.vault.address
    return idle(world) + sum(m.convertToAssets(m.balanceOf(vault)) for m in world.markets)


def churn_once(world: World) -> bool:
    """One rebalance losing as much as the vault allows now: `x` out of one fee market into the other
    (from idle at first); True if it went through."""
    vault, (m0, m1) = world.vault, world.markets
    total = vault.totalAssets()
    loss_left = vault.budgets()[0]  # the turnover budget is far from binding here
    loss_room = min(vault.max_loss_bps() * total // BPS, loss_left * total // FRACTION) - ROUNDING_WEI
    x = loss_room * WAD // FEE
    for _ in range(4):  # if it is refused, try smaller
        if x <= 0:
            return False
        p0, p1 = vault.position(m0.address), vault.position(m1.address)
        source, sink = (m0, m1) if p0 >= p1 else (m1, m0)
        src_position = max(p0, p1)
        if src_position >= x:
            targets = [(source.address, src_position - x), (sink.address, min(p0, p1) + x)]
        else:  # start from idle
            targets = [(m0.address, p0 + x)]
        try:
            with boa.env.prank(world.accounts.keeper):
                vault.rebalance(targets, b"\x66" * 32)
            return True
        except BoaError:  # over a limit: smaller next time
            x //= 2
    return False


def churn(world: World, days: int) -> list[int]:
    """Churns at every cooldown for `days`; returns the real value at the start and at the end of each day."""
    values = [real_value(world)]
    for _ in range(days):
        for _ in range(DAY // HOUR):
            churn_once(world)
            boa.env.time_travel(seconds=HOUR)
        values.append(real_value(world))
    return values


def test_a_stolen_key_loses_at_most_the_daily_loss_budget():
    with boa.env.anchor():
        world = devnet_world()
        start = world.vault.totalAssets()
        size = start * world.vault.daily_loss_bps() // BPS  # one day's budget in assets at the start
        values = churn(world, 30)
    losses = [before - after for before, after in pairwise(values)]
    for day in range(30):
        lost = start - values[day + 1]
        # the day's moves end an hour before the day does: by then 24 hours of refill at most
        assert lost <= size * (day + 2) + 30 * 24 * ROUNDING_WEI, (day, lost)
    assert losses[0] <= 2 * size  # a full budget plus a day's refill
    assert all(loss <= size * 1001 // 1000 for loss in losses[1:])  # then a day's refill, on a shrinking total
    assert sum(losses) >= size * 30  # the attack does use the budget: the bound is tight, not vacuous
    print(
        f"\nstolen-key churn under the devnet limits: day 1 {losses[0] / start:.4%}, "
        f"days 2-30 at most {max(losses[1:]) / start:.4%} a day (mean {sum(losses[1:]) / 29 / start:.4%}), "
        f"30 days {sum(losses) / start:.4%} of {start / USDC:,.0f} USDC"
    )


def test_without_the_daily_budgets_the_same_churn_loses_far_more():
    """The reference: the same keeper with the daily budgets at their loosest loses ~2.4 % a day."""
    with boa.env.anchor():
        devnet = devnet_world()
        for param in (Param.DAILY_LOSS_BPS, Param.DAILY_TURNOVER_BPS):
            apply_param(devnet.vault, devnet.accounts.admin, param, devnet.vault.MAX_RATE_BPS())
        start = devnet.vault.totalAssets()
        values = churn(devnet, 1)
    lost = values[0] - values[1]
    size = start * DEVNET[Param.DAILY_LOSS_BPS] // BPS
    assert lost > 20 * size
    print(f"\nwithout daily budgets: {lost / start:.4%} in one day")
