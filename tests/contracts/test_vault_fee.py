"""Performance fee: minted as shares on gains above the high-water mark, capped, previewed."""

import boa
import pytest

from tests.contracts.world import BPS, USDC, WAD, Param, apply_param, events

YEAR = 365 * 86_400
TEN_PERCENT_A_YEAR = WAD // 10 // YEAR
WHOLE_SHARE = 10**9  # 6 asset decimals + offset 3


def earn(world, seconds: int) -> int:
    """Market 0 (300k of the vault's 1M) pays 10 %/year for `seconds`; returns the vault's gain."""
    before = world.vault.totalAssets()
    with boa.env.prank(world.accounts.operator):
        world.markets[0].set_rate(TEN_PERCENT_A_YEAR)
    boa.env.time_travel(seconds=seconds)
    return world.vault.totalAssets() - before


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
    gain = earn(invested, YEAR)
    alice_before = vault.previewRedeem(vault.balanceOf(accounts.alice))  # includes the pending fee

    (accrued,) = poke(invested)
    assert accrued.fee_recipient == accounts.fee_recipient
    assert vault.balanceOf(accounts.fee_recipient) == accrued.shares
    assert fee_value(invested) == pytest.approx(gain * fee_bps // BPS, rel=1e-4)
    assert abs(vault.previewRedeem(vault.balanceOf(accounts.alice)) - alice_before) <= 1
    assert vault.high_water_mark() == accrued.high_water_mark
    assert abs(vault.high_water_mark() - vault.convertToAssets(WHOLE_SHARE)) <= 1


def test_no_fee_until_the_price_is_back_above_the_mark(invested):
    vault, accounts = invested.vault, invested.accounts
    earn(invested, YEAR)
    poke(invested)
    mark = vault.high_water_mark()
    fee_shares = vault.balanceOf(accounts.fee_recipient)

    with boa.env.prank(accounts.operator):
        invested.markets[0].inject_loss(1_000)  # -30k: the price falls below the mark
    earn(invested, YEAR // 2)  # +~14k: still below
    assert not poke(invested)
    assert vault.high_water_mark() == mark
    assert vault.balanceOf(accounts.fee_recipient) == fee_shares

    earn(invested, 2 * YEAR)  # now well above the mark
    total, supply = vault.totalAssets(), vault.totalSupply()
    gain_above_mark = total - mark * supply // WHOLE_SHARE
    (accrued,) = poke(invested)
    minted_value = accrued.shares * total // (supply + accrued.shares)
    assert minted_value == pytest.approx(gain_above_mark // 10, rel=1e-4)  # 10 % of the gain above the mark only
    assert accrued.high_water_mark > mark


def test_zero_fee_still_raises_the_mark(invested):
    vault, accounts = invested.vault, invested.accounts
    apply_param(vault, accounts.admin, Param.PERFORMANCE_FEE_BPS, 0)
    mark = vault.high_water_mark()
    earn(invested, YEAR)
    assert not poke(invested)
    assert vault.high_water_mark() > mark
    assert vault.balanceOf(accounts.fee_recipient) == 0

    # Raising the fee waits a day; the gain of that day is charged at the old rate (zero).
    apply_param(vault, accounts.admin, Param.PERFORMANCE_FEE_BPS, 1_000)
    assert vault.performance_fee_bps() == 1_000
    assert vault.balanceOf(accounts.fee_recipient) == 0
    assert vault.high_water_mark() == vault.convertToAssets(WHOLE_SHARE)
    earn(invested, YEAR)
    assert poke(invested)


def test_changing_the_recipient_pays_the_old_one_first(invested):
    vault, accounts = invested.vault, invested.accounts
    earn(invested, YEAR)
    newcomer = boa.env.generate_address()
    with boa.env.prank(accounts.admin):
        vault.set_fee_recipient(newcomer)
    (accrued,) = events(vault, "FeeAccrued")
    assert accrued.fee_recipient == accounts.fee_recipient
    assert vault.balanceOf(accounts.fee_recipient) == accrued.shares > 0
    assert vault.balanceOf(newcomer) == 0


def test_no_fee_without_gain(invested):
    boa.env.time_travel(seconds=YEAR)
    assert not poke(invested)
    assert invested.vault.balanceOf(invested.accounts.fee_recipient) == 0
