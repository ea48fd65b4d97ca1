"""Performance fee: minted as shares on gains above the high-water mark, capped, previewed.

Market gains reach totalAssets only when a report (or a rebalance) values the markets anew, and the fee is
accrued right there; a gain that reaches idle directly (a donation) is pending until the next action."""

import boa
import pytest

from tests.contracts.world import BPS, USDC, WAD, Param, apply_param, events

YEAR = 365 * 86_400
TEN_PERCENT_A_YEAR = WAD // 10 // YEAR
WHOLE_SHARE = 10**9  # 6 asset decimals + offset 3


def report(world, reporter: str = "keeper") -> list:
    """`reporter` reports every market; returns the FeeAccrued events."""
    with boa.env.prank(getattr(world.accounts, reporter)):
        world.vault.report()
    return events(world.vault, "FeeAccrued")


def earn(world, seconds: int) -> tuple[int, list]:
    """Market 0 (300k of the vault's 1M) pays 10 %/year for `seconds`, then the keeper reports;
    returns the vault's gain and the report's FeeAccrued events."""
    before = world.vault.totalAssets()
    with boa.env.prank(world.accounts.operator):
        world.markets[0].set_rate(TEN_PERCENT_A_YEAR)
    boa.env.time_travel(seconds=seconds)
    assert world.vault.totalAssets() == before  # stored accounting: nothing shows before the report
    accrued = report(world)
    return world.vault.totalAssets() - before, accrued


def poke(world) -> list:
    """A 1-USDC deposit by bob, which accrues the fee; returns the FeeAccrued events."""
    with boa.env.prank(world.accounts.bob):
        world.vault.deposit(USDC, world.accounts.bob)
    return events(world.vault, "FeeAccrued")


def fee_value(world) -> int:
    return world.vault.convertToAssets(world.vault.balanceOf(world.accounts.fee_recipient))


@pytest.mark.parametrize("fee_bps", [1_000, 3_000])
def test_fee_is_its_share_of_the_gain_above_the_mark(invested, fee_bps):
    vault, accounts = invested.vault, invested.accounts
    apply_param(vault, accounts.admin, Param.PERFORMANCE_FEE_BPS, fee_bps)
    gain, (accrued,) = earn(invested, YEAR)
    assert gain == pytest.approx(30_000 * USDC, rel=1e-4)
    assert accrued.fee_recipient == accounts.fee_recipient
    assert vault.balanceOf(accounts.fee_recipient) == accrued.shares
    assert fee_value(invested) == pytest.approx(gain * fee_bps // BPS, rel=1e-4)
    assert vault.high_water_mark() == accrued.high_water_mark
    assert abs(vault.high_water_mark() - vault.convertToAssets(WHOLE_SHARE)) <= 1
    assert not poke(invested)  # charged once


def test_previews_include_the_pending_fee(invested):
    """A gain that reached idle directly is not charged yet: previews already net the fee out."""
    vault, accounts = invested.vault, invested.accounts
    invested.token.mint(vault.address, 10_000 * USDC)
    alice_before = vault.previewRedeem(vault.balanceOf(accounts.alice))
    assert alice_before == pytest.approx(1_009_000 * USDC, rel=1e-6)  # 10 % of the 10k gain goes to the fee
    (accrued,) = poke(invested)
    assert accrued.shares > 0
    assert abs(vault.previewRedeem(vault.balanceOf(accounts.alice)) - alice_before) <= 1


def test_no_fee_until_the_price_is_back_above_the_mark(invested):
    vault, accounts = invested.vault, invested.accounts
    earn(invested, YEAR)
    mark = vault.high_water_mark()
    fee_shares = vault.balanceOf(accounts.fee_recipient)
    assert fee_shares > 0

    with boa.env.prank(accounts.operator):
        invested.markets[0].inject_loss(1_000)  # -33k: the price falls below the mark
    with boa.env.prank(accounts.keeper), boa.reverts("vault: over daily budget"):
        vault.report()  # a 3.3 % fall is beyond the keeper's 0.3 % a day
    assert not report(invested, "guardian")  # the guardian books it
    _, accrued = earn(invested, YEAR // 2)  # +~15k: still below
    assert not accrued and not poke(invested)
    assert vault.high_water_mark() == mark
    assert vault.balanceOf(accounts.fee_recipient) == fee_shares

    supply = vault.totalSupply()
    _, (accrued,) = earn(invested, 2 * YEAR)  # now well above the mark
    total = vault.totalAssets()
    gain_above_mark = total - mark * supply // WHOLE_SHARE
    minted_value = accrued.shares * total // (supply + accrued.shares)
    assert minted_value == pytest.approx(gain_above_mark // 10, rel=1e-4)  # 10 % of the gain above the mark only
    assert accrued.high_water_mark > mark


def test_zero_fee_still_raises_the_mark(invested):
    vault, accounts = invested.vault, invested.accounts
    apply_param(vault, accounts.admin, Param.PERFORMANCE_FEE_BPS, 0)
    mark = vault.high_water_mark()
    _, accrued = earn(invested, YEAR)
    assert not accrued and not poke(invested)
    assert vault.high_water_mark() > mark
    assert vault.balanceOf(accounts.fee_recipient) == 0

    # Raising the fee waits a day; the gain reported before it is accepted is charged at the old rate (zero).
    with boa.env.prank(accounts.admin):
        vault.submit_param(Param.PERFORMANCE_FEE_BPS, 1_000)
    boa.env.time_travel(seconds=vault.timelock())
    assert not report(invested)
    with boa.env.prank(accounts.admin):
        vault.accept_param(Param.PERFORMANCE_FEE_BPS)
    assert vault.performance_fee_bps() == 1_000
    assert vault.balanceOf(accounts.fee_recipient) == 0
    assert vault.high_water_mark() == vault.convertToAssets(WHOLE_SHARE)
    _, accrued = earn(invested, YEAR)
    assert accrued


def test_changing_the_recipient_pays_the_old_one_first(invested):
    vault, accounts = invested.vault, invested.accounts
    invested.token.mint(vault.address, 10_000 * USDC)  # a gain not charged yet
    newcomer = boa.env.generate_address()
    with boa.env.prank(accounts.admin):
        vault.set_fee_recipient(newcomer)
    (accrued,) = events(vault, "FeeAccrued")
    assert accrued.fee_recipient == accounts.fee_recipient
    assert vault.balanceOf(accounts.fee_recipient) == accrued.shares > 0
    assert vault.balanceOf(newcomer) == 0


def test_no_fee_without_gain(invested):
    boa.env.time_travel(seconds=YEAR)
    assert not report(invested)
    assert not poke(invested)
    assert invested.vault.balanceOf(invested.accounts.fee_recipient) == 0


def test_a_gain_faster_than_the_price_growth_bound_counts_only_up_to_the_bound(invested):
    """At 10 %/year accepted growth, a market that doubles in a year is booked at +10 % only."""
    vault, accounts, m0 = invested.vault, invested.accounts, invested.markets[0]
    apply_param(vault, accounts.admin, Param.MAX_PRICE_GROWTH_BPS, 1_000)  # a tightening: at once
    report(invested)
    with boa.env.prank(accounts.operator):
        m0.set_rate(WAD // YEAR)  # 100 % a year
    boa.env.time_travel(seconds=YEAR)
    report(invested)
    assert m0.convertToAssets(m0.balanceOf(vault.address)) == pytest.approx(600_000 * USDC, rel=1e-6)
    assert vault.totalAssets() == pytest.approx(1_030_000 * USDC, rel=1e-6)
