"""EIP-4626 properties under random vault states (hypothesis).

Each example builds a state from scratch inside an anchor: alice's deposit, random interest and elapsed
time booked by the keeper's report, a loss booked by the guardian's, a donation to idle that no fee has been
taken on yet, and a liquidity limit, so share prices, pending fees and liquidity all vary. Bob then acts.
Every property runs on three layouts: all funds idle, funds in two markets, and funds in two markets
after one of them lost part of its assets (share price below the high-water mark).
"""

from dataclasses import dataclass

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts.world import USDC, Param, apply_param, rebalance

LAYOUTS = ("idle", "invested", "after loss")
# The examples of the profile are shared by the three layouts. The session world and the
# per-test anchor are reset per example by the anchor in each test.
examples = settings(
    max_examples=max(settings.default.max_examples // len(LAYOUTS), 5),
    suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Scenario:
    deposit: int
    market_bps: tuple[int, int]  # share of the deposit in markets 0 and 1
    rates: tuple[int, int]  # per second, WAD
    elapsed: int
    loss_bps: int  # lost by market 1
    liquidity: int  # market 0's liquidity limit
    donation_bps: int  # of the deposit, sent to the vault's idle: a gain the fee is pending on

    def build(self, world) -> None:
        vault, accounts, m = world.vault, world.accounts, world.markets
        with boa.env.prank(accounts.alice):
            vault.deposit(self.deposit, accounts.alice)
        rebalance(world, {m[0]: self.deposit * self.market_bps[0] // 10_000,
                          m[1]: self.deposit * self.market_bps[1] // 10_000})
        with boa.env.prank(accounts.operator):
            m[0].set_rate(self.rates[0])
            m[1].set_rate(self.rates[1])
            m[0].set_liquidity(self.liquidity)
        boa.env.time_travel(seconds=self.elapsed)
        with boa.env.prank(accounts.keeper):
            vault.report()  # books the interest (gains never spend the keeper's budget)
        with boa.env.prank(accounts.operator):
            m[1].inject_loss(self.loss_bps)
        with boa.env.prank(accounts.guardian):
            vault.report()  # books the loss, beyond the keeper's daily budget
        world.token.mint(vault.address, self.deposit * self.donation_bps // 10_000)


def scenarios(layout: str) -> st.SearchStrategy[Scenario]:
    # at most 45 % in markets stays within the world's turnover, cap and idle-floor limits
    in_markets = st.just(0) if layout == "idle" else st.integers(100, 2_250)
    return st.builds(
        Scenario,
        deposit=st.integers(1, 2_000_000 * USDC) if layout == "idle" else st.integers(100 * USDC, 2_000_000 * USDC),
        market_bps=st.tuples(in_markets, in_markets),
        rates=st.tuples(st.integers(0, 10**11), st.integers(0, 10**11)),
        elapsed=st.integers(0, 400 * 86_400),
        loss_bps=st.integers(100, 5_000) if layout == "after loss" else st.just(0),
        liquidity=st.one_of(st.just(2**256 - 1), st.integers(0, 1_000_000 * USDC)),
        donation_bps=st.one_of(st.just(0), st.integers(1, 500)),
    )


amounts = st.integers(0, 3_000_000 * USDC)
layouts = pytest.mark.parametrize("layout", LAYOUTS)


def as_bob(world):
    return boa.env.prank(world.accounts.bob)


@layouts
@examples
@given(data=st.data(), assets=amounts, shares=amounts.map(lambda a: a * 1_000))
def test_previews_equal_actions(world, layout, data, assets, shares):
    vault, bob = world.vault, world.accounts.bob
    with boa.env.anchor():
        data.draw(scenarios(layout)).build(world)
        with as_bob(world):
            expected = vault.previewDeposit(assets)
            assert vault.deposit(assets, bob) == expected
            expected = vault.previewMint(shares)
            assert vault.mint(shares, bob) == expected
            to_withdraw = vault.maxWithdraw(bob) * 2 // 3
            expected = vault.previewWithdraw(to_withdraw)
            assert vault.withdraw(to_withdraw, bob, bob) == expected
            to_redeem = vault.maxRedeem(bob) // 2
            expected = vault.previewRedeem(to_redeem)
            assert vault.redeem(to_redeem, bob, bob) == expected


@layouts
@examples
@given(data=st.data(), assets=amounts, shares=amounts.map(lambda a: a * 1_000))
def test_round_trips_never_profit_the_caller(world, layout, data, assets, shares):
    vault, bob = world.vault, world.accounts.bob
    with boa.env.anchor():
        data.draw(scenarios(layout)).build(world)
        with as_bob(world), boa.env.anchor():  # deposit, then redeem what it minted
            minted = vault.deposit(assets, bob)
            assert vault.previewWithdraw(assets) >= minted  # taking the assets back costs at least those shares
            assert vault.redeem(minted, bob, bob) <= assets
        with as_bob(world), boa.env.anchor():  # mint, then redeem the same shares
            paid = vault.mint(shares, bob)
            assert vault.previewWithdraw(paid) >= shares
            assert vault.redeem(shares, bob, bob) <= paid
        with as_bob(world):
            vault.deposit(assets, bob)  # bob holds shares for the exits below
        owned = vault.balanceOf(bob)
        with as_bob(world), boa.env.anchor():  # redeem everything, then mint it back
            got = vault.redeem(vault.maxRedeem(bob), bob, bob)
            assert vault.previewDeposit(got) <= owned
            assert vault.mint(owned - vault.balanceOf(bob), bob) >= got
        with as_bob(world), boa.env.anchor():  # withdraw what is liquid, then deposit it back
            taken = vault.maxWithdraw(bob)
            burned = vault.withdraw(taken, bob, bob)
            assert vault.deposit(taken, bob) <= burned


@layouts
@examples
@given(data=st.data(), limit_room=st.integers(0, 1_000_000 * USDC))
def test_acting_at_max_succeeds_and_beyond_reverts(world, layout, data, limit_room):
    vault, accounts, bob = world.vault, world.accounts, world.accounts.bob
    with boa.env.anchor():
        data.draw(scenarios(layout)).build(world)
        apply_param(vault, accounts.admin, Param.DEPOSIT_LIMIT, vault.totalAssets() + limit_room)
        with as_bob(world):
            vault.deposit(vault.maxDeposit(bob) // 3, bob)  # bob holds shares too
            assert vault.maxRedeem(bob) <= vault.balanceOf(bob)
            assert vault.maxWithdraw(bob) <= vault.convertToAssets(vault.balanceOf(bob))
            assert vault.previewRedeem(vault.maxRedeem(bob)) <= vault.maxWithdraw(bob)
            claim = vault.convertToAssets(vault.balanceOf(bob))
            max_withdraw, max_redeem = vault.maxWithdraw(bob), vault.maxRedeem(bob)
            # beyond the claim: "more than max"; within it but beyond what idle and the queue pay: "not enough
            # liquidity" (then maxWithdraw is exactly what they pay)
            over_liquidity = "vault: not enough liquidity"
            withdraw_reason = "vault: withdraw more than max" if max_withdraw == claim else over_liquidity
            checks = [
                ("deposit", vault.maxDeposit(bob), lambda x: vault.deposit(x, bob), "vault: deposit more than max"),
                ("mint", vault.maxMint(bob), lambda x: vault.mint(x, bob), "vault: mint more than max"),
                ("withdraw", max_withdraw, lambda x: vault.withdraw(x, bob, bob), withdraw_reason),
            ]
            for _action, maximum, act, reason in checks:
                with boa.env.anchor():
                    with boa.reverts(reason):
                        act(maximum + 1)
                with boa.env.anchor():
                    act(maximum)
            with boa.env.anchor():
                vault.redeem(max_redeem, bob, bob)
            with boa.env.anchor():
                if max_redeem == vault.balanceOf(bob):
                    with boa.reverts("vault: redeem more than max"):
                        vault.redeem(max_redeem + 1, bob, bob)
                elif vault.previewRedeem(max_redeem + 1) > max_withdraw:
                    with boa.reverts("vault: not enough liquidity"):
                        vault.redeem(max_redeem + 1, bob, bob)
                else:  # one more share still pays out of what is liquid: maxRedeem rounds down
                    vault.redeem(max_redeem + 1, bob, bob)


@layouts
@examples
@given(data=st.data(), amount=amounts)
def test_rounding_favours_the_vault(world, layout, data, amount):
    vault = world.vault
    with boa.env.anchor():
        data.draw(scenarios(layout)).build(world)
        assert vault.previewDeposit(amount) <= vault.convertToShares(amount) <= vault.previewWithdraw(amount)
        assert vault.previewRedeem(amount) <= vault.convertToAssets(amount) <= vault.previewMint(amount)
        assert vault.convertToShares(vault.convertToAssets(amount)) <= amount
        assert vault.convertToAssets(vault.convertToShares(amount)) <= amount


@pytest.mark.parametrize("decimals_offset", [0, 3])
@examples
@given(
    seed=st.integers(1, 1_000),
    donation=st.integers(1, 10_000_000 * USDC),
    victim_deposit=st.integers(1, 1_000_000 * USDC),
)
def test_donation_attack_on_the_first_depositor_is_unprofitable(world, decimals_offset, seed, donation, victim_deposit):
    from tests.contracts.world import deploy_vault, fund

    token, accounts = world.token, world.accounts
    with boa.env.anchor():
        vault = deploy_vault(token, accounts, decimals_offset)
        attacker, victim = boa.env.generate_address(), boa.env.generate_address()
        fund(token, vault, attacker, seed + donation)
        fund(token, vault, victim, victim_deposit)
        with boa.env.prank(attacker):
            vault.deposit(seed, attacker)
            token.transfer(vault.address, donation)  # inflate the share price
        with boa.env.prank(victim):
            vault.deposit(victim_deposit, victim)
        with boa.env.prank(attacker):
            vault.redeem(vault.balanceOf(attacker), attacker, attacker)
        assert token.balanceOf(attacker) <= seed + donation
