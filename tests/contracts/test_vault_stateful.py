"""Stateful property test of the Vault: random sequences of depositor, keeper, admin, guardian and market actions.

Three depositors deposit, mint, withdraw and redeem; the keeper rebalances, both with targets built to
respect every guardrail and with arbitrary ones (unlisted and duplicate markets, caps, turnover and idle
floor exceeded, too little liquidity or idle); markets earn, lose and limit liquidity; time passes; the
admin moves caps and parameters; the guardian pauses and pulls everything out. A fourth listed market is
hostile (tests/contracts/HostileMarket.vy): its operator switches reverts on any of its functions, lying
previews, a moved share price, an entry fee and partial pulls on and off; the keeper supplies it and
withdraws from it, the admin leaves it out of the withdraw queue or puts it first.

Every rebalance's outcome is predicted before it is sent: the checks that come before any funds move
are predicted in Python, and the guardrail verdict comes from `strategy.guardrails.check_rebalance` on
the state the same rebalance reaches with the guardrails opened up (an injected test-only function, run
inside an anchor that is thrown away), then the daily budgets from `budgets()`. The real call must then
succeed or revert with exactly that reason.

Invariants: totalAssets is idle plus the booked holdings of listed markets only, no holder can take more than
their share, and every depositor can withdraw their claim up to what idle and the healthy markets of the
withdraw queue pay, whatever the hostile market does.
"""

from fractions import Fraction

import boa
from boa.contracts.base_evm_contract import BoaError
from boa.contracts.vyper.vyper_contract import VyperContract
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from strategy.guardrails import Guardrails, Reason, VaultState, check_rebalance
from tests.contracts.world import (
    BASE_CAP_ABS,
    BASE_CAP_BPS,
    BPS,
    DAY,
    DEPOSITOR_FUNDS,
    MAX_UINT256,
    USDC,
    WAD,
    Param,
    World,
    apply_param,
    deploy_hostile_market,
    deploy_market,
    events,
    fund,
    list_market,
    read_guardrails,
    read_state,
)

DECISION = bytes(range(32))
YEAR = 365 * DAY
MAX_RATE = WAD // 2 // YEAR  # 50 % a year, simple
UNLISTED = 3  # market index of the market the vault never lists
# Rounding in the markets' share conversions moves a position by a few wei at most.
ROUNDING_WEI = 10
PRICE_SCALE = 10**27
FRACTION = 10**18
OVER_BUDGET = "vault: over daily budget"
# HostileMarket's REVERT_* bits
REVERT_BITS = {"previewRedeem": 1, "balanceOf": 2, "maxWithdraw": 4, "withdraw": 8, "redeem": 16, "deposit": 32,
               "convertToAssets": 64, "maxRedeem": 128}

# Test-only: lifts every rebalance guardrail so the oracle sees where the moves alone lead.
OPEN_GUARDRAILS = """
@external
def open_guardrails_for_test():
    self._set_param(PARAM_MAX_TURNOVER_BPS, 2 * BPS)  # moving everything out of one market into another: 2x total
    self._set_param(PARAM_MAX_LOSS_BPS, 10000)
    self._set_param(PARAM_MIN_IDLE_BPS, 0)
    self._set_param(PARAM_DAILY_LOSS_BPS, MAX_RATE_BPS)
    self._set_param(PARAM_DAILY_TURNOVER_BPS, MAX_RATE_BPS)
    self._budgets = 0
    for market: address in self._markets:
        self.market_config[market] = MarketConfig(enabled=True, cap_bps=10000, cap_abs=max_value(uint256))
"""

depositor_index = st.integers(0, 2)
market_index = st.integers(0, 2)
fraction_bps = st.integers(0, 11_000)  # of the caller's maximum; above 10 000 must revert
# (market index, the unlisted one one time in ten; target: None = the current position,
# ("to", bps) = bps of totalAssets, ("by", bps) = the current position moved by bps of totalAssets)
allocation = st.tuples(
    st.integers(0, 9).map(lambda i: UNLISTED if i == 9 else i % UNLISTED),
    st.one_of(
        st.none(),
        st.tuples(st.just("to"), st.integers(0, BPS)),
        st.tuples(st.just("by"), st.integers(-BPS, BPS)),
    ),
)


class VaultMachine(RuleBasedStateMachine):
    def __init__(
        self, world: World, unlisted: VyperContract, hostile: VyperContract, depositors: tuple[str, ...]
    ) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.vault, self.token = world.vault, world.token
        self.accounts = world.accounts
        self.markets = [*world.markets, unlisted]
        self.listed = world.markets  # the honest markets
        self.hostile = hostile
        self.depositors = depositors
        self.virtual_shares = 10 ** (self.vault.decimals() - self.token.decimals())

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    # ---------------------------------------------------------------- helpers

    def state(self) -> VaultState:
        """Idle and every position as a report would value it now (what a rebalance starts from)."""
        return read_state(self.vault, self.token)

    def booked_state(self) -> VaultState:
        """Idle and every position as booked (what a rebalance ends with)."""
        before = self.state()
        return VaultState(idle=before.idle, positions={m: self.booked(m) for m in self.vault.markets()},
                          last_rebalance=before.last_rebalance, paused=before.paused)

    def market(self, address: str) -> VyperContract:
        return next(m for m in self.markets if m.address == address)

    def expect(self, reason: str | None, call):
        """Runs `call`; it must revert with `reason`, or succeed when `reason` is None."""
        if reason is None:
            return call()
        with boa.reverts(reason):
            call()
        return None

    # ---------------------------------------------------------------- depositors

    @initialize(amounts=st.lists(st.integers(USDC, 3_000_000 * USDC), min_size=3, max_size=3))
    def first_deposits(self, amounts):
        for who, assets in enumerate(amounts):
            self.enter(who, "deposit", assets)

    @rule(who=depositor_index, action=st.sampled_from(["deposit", "mint"]), amount=st.integers(0, 3_000_000 * USDC))
    def enter(self, who, action, amount):
        """deposit(assets) or mint(shares); `amount` is in assets and scaled to shares for a mint."""
        owner, vault = self.depositors[who], self.vault
        if action == "deposit":
            maximum, expected = vault.maxDeposit(owner), vault.previewDeposit(amount)
            assets, shares = amount, expected
        else:
            amount *= self.virtual_shares
            maximum, expected = vault.maxMint(owner), vault.previewMint(amount)
            assets, shares = expected, amount
        self.token.mint(owner, assets)
        balance, cash = vault.balanceOf(owner), self.token.balanceOf(owner)
        reason = "vault: paused" if vault.paused() else None
        if reason is None and amount > maximum:
            reason = f"vault: {action} more than max"
        with boa.env.prank(owner):
            result = self.expect(reason, lambda: getattr(vault, action)(amount, owner))
        if reason is None:
            assert result == expected
            assert vault.balanceOf(owner) == balance + shares
            assert self.token.balanceOf(owner) == cash - assets

    @rule(who=depositor_index, action=st.sampled_from(["withdraw", "redeem"]), bps=fraction_bps)
    def leave(self, who, action, bps):
        """withdraw(assets) or redeem(shares) of `bps` of the owner's maximum."""
        owner, vault = self.depositors[who], self.vault
        balance, cash = vault.balanceOf(owner), self.token.balanceOf(owner)
        claim, liquid = vault.convertToAssets(balance), vault.maxWithdraw(owner)
        assert liquid <= claim
        if action == "withdraw":
            maximum = liquid
            amount = maximum * bps // BPS
            expected = vault.previewWithdraw(amount)
            assets, shares = amount, expected
            over_claim = amount > claim
        else:
            maximum = vault.maxRedeem(owner)
            assert maximum <= balance
            amount = maximum * bps // BPS
            expected = vault.previewRedeem(amount)
            assets, shares = expected, amount
            over_claim = amount > balance
        reason = None
        if over_claim:
            reason = f"vault: {action} more than max"
        elif assets > liquid:  # within the claim, beyond what idle and the queue say they pay (maxWithdraw)
            reason = "vault: not enough liquidity"
        elif assets > self.healthy_liquidity():  # the hostile market may not pay what its maxWithdraw says
            with boa.env.anchor(), boa.env.prank(owner):
                try:
                    getattr(vault, action)(amount, owner, owner)
                except BoaError as error:
                    reason = "vault: not enough liquidity"
                    assert reason in str(error)  # noqa: PT017 (the only way it may fail)
        with boa.env.prank(owner):
            result = self.expect(reason, lambda: getattr(vault, action)(amount, owner, owner))
        if reason is None:
            assert result == expected
            assert vault.balanceOf(owner) == balance - shares
            assert self.token.balanceOf(owner) == cash + assets

    # ---------------------------------------------------------------- keeper

    @rule(
        caller=st.integers(0, 9).map(lambda i: "guardian" if i == 9 else "keeper"),
        allocations=st.lists(allocation, max_size=UNLISTED + 1, unique_by=lambda a: a[0]),
        duplicate=st.integers(0, 9).map(lambda i: i == 9),
        ready=st.booleans(),
    )
    def rebalance_anything(self, caller, allocations, duplicate, ready):
        if ready:
            self.make_ready()
        if duplicate and allocations:
            allocations = [*allocations, allocations[0]]
        state = self.state()
        targets = []
        for i, target in allocations:
            market = self.markets[i].address
            if target is None:
                targets.append((market, state.position(market)))
            else:
                kind, bps = target
                base = state.position(market) if kind == "by" else 0
                targets.append((market, max(base + state.total * bps // BPS, 0)))
        self.rebalance(targets, getattr(self.accounts, caller))

    @rule(
        limit=st.sampled_from(["cap", "idle floor", "turnover", "liquidity"]),
        market=market_index,
        excess_bps=st.integers(0, 1_000),
    )
    def rebalance_past_a_limit(self, limit, market, excess_bps):
        """Moves funds just past a cap, the idle floor, the turnover limit or a market's liquidity: always rejected.

        Funds are spread over the markets' cap room so that the idle floor and turnover can fail
        on their own, not only behind a cap; a turnover attempt also empties `market` first.
        The liquidity attempt first limits `market` to half the vault's position there.
        """
        self.make_ready()
        state, limits = self.state(), read_guardrails(self.vault)
        total, excess = state.total, ROUNDING_WEI + state.total * excess_bps // BPS
        address = self.listed[market].address
        if limit == "cap":
            caps = limits.markets[address]
            position = state.position(address)
            targets = {address: max(position, min(caps.cap_abs, caps.cap_bps * total // BPS)) + excess}
        elif limit == "liquidity":
            position = state.position(address)
            if position < 2:
                return  # nothing a market could hold back
            with boa.env.prank(self.accounts.operator):
                self.listed[market].set_liquidity(position // 2)
            targets = {address: 0 if excess_bps % 2 else max(position - position // 2 - excess, 0)}
        elif limit == "idle floor":
            targets = self.spread(state, limits, state.idle - limits.min_idle_bps * total // BPS + excess, [])
        else:
            withdrawn = min(state.position(address), self.listed[market].maxWithdraw(self.vault.address))
            supplied = max(limits.max_turnover_bps * total // BPS - withdrawn, 0) + excess
            targets = {address: state.position(address) - withdrawn, **self.spread(state, limits, supplied, [address])}
        assert self.rebalance(list(targets.items()), self.accounts.keeper) is not None

    def spread(self, state: VaultState, limits: Guardrails, amount: int, skip: list[str]) -> dict[str, int]:
        """Targets supplying `amount` to the listed markets but `skip`, filling each one's cap room in turn."""
        targets = {}
        for market in self.listed:
            if market.address in skip or amount <= 0:
                continue
            position, caps = state.position(market.address), limits.markets[market.address]
            room = max(min(caps.cap_abs, caps.cap_bps * state.total // BPS) - ROUNDING_WEI - position, 0)
            targets[market.address] = position + min(room, amount)
            amount -= min(room, amount)
        if amount > 0 and targets:
            last = next(reversed(targets))
            targets[last] += amount
        return targets

    @precondition(lambda self: self.vault.totalAssets() >= USDC)
    @rule(weights=st.lists(st.one_of(st.none(), st.integers(0, BPS)), min_size=3, max_size=3))
    def rebalance_within_guardrails(self, weights):
        self.make_ready()
        with boa.env.prank(self.accounts.guardian):
            self.vault.report()  # books any fall outside the keeper's budget
        targets = self.targets_within_guardrails(weights)
        reason = self.rebalance(targets, self.accounts.keeper)
        # rounding costs a few wei; only an empty loss budget refuses that
        assert reason is None or (reason == OVER_BUDGET and self.vault.budgets()[0] < FRACTION // 10**9), reason

    def make_ready(self) -> None:
        """Unpauses and waits out the cooldown, so that a rebalance gets as far as the guardrails."""
        if self.vault.paused():
            self.act("unpause")
        ready_at = self.vault.last_rebalance() + self.vault.min_rebalance_interval()
        if boa.env.timestamp < ready_at:
            boa.env.time_travel(seconds=ready_at - boa.env.timestamp)

    def targets_within_guardrails(self, weights: list[int | None]) -> list[tuple[str, int]]:
        """Targets `weight` bps of totalAssets per market (None = not named), pulled inside every guardrail with a
        margin."""
        state, limits = self.state(), read_guardrails(self.vault)
        total = state.total
        moves: dict[str, tuple[int, int]] = {}
        for market, weight in zip(self.listed, weights, strict=True):
            if weight is None:
                continue
            position, target = state.position(market.address), total * weight // BPS
            if target > position:
                caps = limits.markets[market.address]
                room = min(caps.cap_abs, caps.cap_bps * total // BPS) * 99 // 100 - ROUNDING_WEI
                target = max(position, min(target, room))
            else:
                target = max(target, position - market.maxWithdraw(self.vault.address))
            moves[market.address] = (position, target)

        scale = Fraction(1)
        moved = sum(abs(target - position) for position, target in moves.values())
        turnover_left = self.vault.budgets()[1] * self.vault.totalAssets() // FRACTION
        turnover_room = min(limits.max_turnover_bps * total // BPS, turnover_left) * 98 // 100
        if moved > turnover_room:
            scale = Fraction(turnover_room, moved)
        supplied = sum(target - position for position, target in moves.values())
        if supplied > 0:
            idle_room = state.idle - limits.min_idle_bps * total // BPS * 102 // 100 - 100 * ROUNDING_WEI
            scale = min(scale, Fraction(max(idle_room, 0), supplied))
        # int() truncates towards zero: every move only shrinks
        return [(market, position + int((target - position) * scale)) for market, (position, target) in moves.items()]

    def rebalance(self, targets: list[tuple[str, int]], caller: str) -> str | None:
        """Predicts the outcome, sends the rebalance, checks it matches; returns the revert reason (None = done)."""
        before, limits, now = self.state(), read_guardrails(self.vault), boa.env.timestamp
        reached = before
        reason = self.rejection_before_guardrails(targets, caller, before, limits, now)
        if reason is None:
            reached = self.reached_without_guardrails(targets)
            violations = check_rebalance(before, reached, now, limits)
            reason = violations[0].reason if violations else None
        if reason is None and not self.within_budgets(before, reached, targets):
            reason = OVER_BUDGET
        with boa.env.prank(caller):
            self.expect(reason, lambda: self.vault.rebalance(targets, DECISION))
        if reason is None:
            self.check_rebalanced(before, targets, reached, now, limits)
        event(f"rebalance: {reason or 'done'}")  # shown by --hypothesis-show-statistics
        return reason

    def rejection_before_guardrails(
        self, targets: list[tuple[str, int]], caller: str, before: VaultState, limits: Guardrails, now: int
    ) -> str | None:
        """The revert reason of the checks before the guardrails: caller, pause, cooldown, listing, and the moves."""
        if caller != self.accounts.keeper:
            return "vault: not keeper"
        unmoved = check_rebalance(before, before, now, limits)  # only pause and cooldown can fail
        if unmoved:
            return unmoved[0].reason
        named: set[str] = set()
        for market, _ in targets:
            if market not in limits.markets:
                return Reason.MARKET_NOT_ALLOWED
            if market in named:
                return "vault: duplicate market"
            named.add(market)
        idle, vault = before.idle, self.vault.address
        for market, target in targets:  # withdrawals first, each limited by the market's liquidity
            position, contract = before.position(market), self.market(market)
            if target == 0 and position != 0:
                if contract.balanceOf(vault) > contract.maxRedeem(vault):
                    return "market: redeem more than max"
                idle += position
            elif target < position:
                if position - target > contract.maxWithdraw(vault):
                    return "market: withdraw more than max"
                idle += position - target
        for market, target in targets:  # then supplies from idle
            supply = target - before.position(market)
            if supply > 0:
                if supply > idle:
                    return "vault: insufficient idle"
                idle -= supply
        return None

    def within_budgets(self, before: VaultState, after: VaultState, targets: list[tuple[str, int]]) -> bool:
        """The daily budgets' verdict: the fall the report books plus the move's own loss, and the turnover,
        as fractions (rounded up) of the stored totalAssets, against what `budgets()` has left."""
        stored = self.vault.totalAssets()
        loss = max(stored - before.total, 0) + max(before.total - after.total, 0)
        moved = sum(abs(after.position(m) - before.position(m)) for m in dict(targets))
        loss_left, turnover_left = self.vault.budgets()
        def share(assets: int) -> int:
            return -(-assets * FRACTION // max(stored, 1))  # rounded up, as the vault rounds it

        return share(loss) <= loss_left and share(moved) <= turnover_left

    def reached_without_guardrails(self, targets: list[tuple[str, int]]) -> VaultState:
        with boa.env.anchor():
            self.vault.inject.open_guardrails_for_test()
            with boa.env.prank(self.accounts.keeper):
                self.vault.rebalance(targets, DECISION)
            return self.booked_state()

    def check_rebalanced(
        self, before: VaultState, targets: list[tuple[str, int]], reached: VaultState, now: int, limits: Guardrails
    ) -> None:
        (done,) = events(self.vault, "Rebalanced")
        after = self.booked_state()
        assert (after.idle, after.positions) == (reached.idle, reached.positions)
        assert check_rebalance(before, after, now, limits) == []  # caps, idle floor, turnover, loss hold
        for market, target in targets:
            assert abs(after.position(market) - target) <= ROUNDING_WEI
        moved = sum(abs(after.position(m) - before.position(m)) for m, _ in targets)
        assert (done.total_before, done.total_after, done.idle_after, done.moved) == (
            before.total,
            after.total,
            after.idle,
            moved,
        )
        assert after.last_rebalance == now

    # ---------------------------------------------------------------- markets and time

    @rule(
        market=market_index,
        change=st.one_of(
            st.tuples(st.just("set_rate"), st.integers(0, MAX_RATE)),
            st.tuples(st.just("set_liquidity"), st.one_of(st.just(MAX_UINT256), st.integers(0, 2_000_000 * USDC))),
            st.tuples(st.just("inject_loss"), st.integers(0, 5_000)),
        ),
    )
    def market_operator(self, market, change):
        function, value = change
        with boa.env.prank(self.accounts.operator):
            getattr(self.listed[market], function)(value)

    @rule(seconds=st.integers(0, 7 * DAY))
    def warp(self, seconds):
        boa.env.time_travel(seconds=seconds)

    # ---------------------------------------------------------------- admin and guardian

    @rule(action=st.sampled_from(["unpause", "pause by guardian", "pause by admin", "emergency_withdraw_all"]))
    def act(self, action):
        vault, total = self.vault, self.vault.totalAssets()
        if action == "unpause":
            with boa.env.prank(self.accounts.admin):
                vault.unpause()
            assert not vault.paused()
            return
        if action == "emergency_withdraw_all":
            shares = [(m.balanceOf(vault.address), m.maxRedeem(vault.address)) for m in self.listed]
            paid = [(m.previewRedeem(redeemable), True) for m, (_, redeemable) in zip(self.listed, shares, strict=True)]
            # the hostile market pays if it answers maxRedeem and its redeem neither reverts nor overdraws it
            h, flags = self.hostile, self.hostile.reverts()
            h_shares = h.real_balance(vault.address)
            h_paid, h_ok = h.real_assets(h_shares), not flags & REVERT_BITS["maxRedeem"]
            if h_ok and h_shares != 0:
                h_ok = not flags & REVERT_BITS["redeem"] and h_paid <= self.token.balanceOf(h.address)
            if not h_ok or h_shares == 0:
                h_paid = 0
            booked = [self.booked(m.address) for m in [*self.listed, h]]
            with boa.env.prank(self.accounts.guardian):
                vault.emergency_withdraw_all()
            logs = {log.market: (log.assets, log.ok) for log in events(vault, "EmergencyWithdrawal")}
            assert [logs[m.address] for m in self.listed] == paid
            assert logs[h.address] == (h_paid, h_ok)
            assert [m.balanceOf(vault.address) for m in self.listed] == [held - taken for held, taken in shares]
            # stored accounting: what was taken off the books was replaced by what was received
            written = sum(booked) - sum(self.booked(m.address) for m in [*self.listed, h])
            assert vault.totalAssets() == total - written + sum(a for a, _ in paid) + h_paid
            assert vault.paused()
            return
        else:
            with boa.env.prank(getattr(self.accounts, action.removeprefix("pause by "))):
                vault.pause()
        assert vault.paused()
        assert vault.totalAssets() == total

    @rule(
        market=market_index,
        cap_bps=st.integers(0, BPS),
        cap_abs=st.one_of(st.just(MAX_UINT256), st.integers(0, 5_000_000 * USDC)),
    )
    def set_caps(self, market, cap_bps, cap_abs):
        list_market(self.vault, self.accounts.admin, self.listed[market], cap_bps, cap_abs)
        assert tuple(self.vault.market_config(self.listed[market].address)) == (True, cap_bps, cap_abs)

    @rule(
        change=st.one_of(
            st.tuples(st.just(Param.MIN_REBALANCE_INTERVAL), st.integers(0, 2 * 3_600)),
            st.tuples(st.just(Param.MAX_TURNOVER_BPS), st.integers(500, BPS)),
            # at least 1 bp: rounding in the markets costs a few wei per move
            st.tuples(st.just(Param.MAX_LOSS_BPS), st.integers(1, 100)),
            st.tuples(st.just(Param.MIN_IDLE_BPS), st.integers(0, 2_000)),
        )
    )
    def set_param(self, change):
        apply_param(self.vault, self.accounts.admin, *change)

    # ---------------------------------------------------------------- invariants

    def healthy_liquidity(self) -> int:
        """Idle plus what the honest markets in the withdraw queue pay now."""
        queue = set(self.vault.withdraw_queue())
        return self.token.balanceOf(self.vault.address) + sum(
            m.maxWithdraw(self.vault.address) for m in self.listed if m.address in queue)

    def booked(self, market: str) -> int:
        shares, price = self.vault.holdings(market)
        return shares * price // PRICE_SCALE

    # ---------------------------------------------------------------- the hostile market

    @rule(
        reverts=st.one_of(st.just(0), st.sampled_from(list(REVERT_BITS.values())), st.integers(0, 255)),
        lie=st.sampled_from([WAD, WAD // 2, 2 * WAD, 10 * WAD]),
        price=st.sampled_from([WAD, WAD * 9 // 10, WAD * 11 // 10, 2 * WAD]),
        fee=st.sampled_from([0, WAD // 1_000, WAD // 20]),
        pull_bps=st.sampled_from([BPS, BPS // 2]),
    )
    def hostile_operator(self, reverts, lie, price, fee, pull_bps):
        with boa.env.prank(self.accounts.operator):
            self.hostile.set_reverts(reverts)
            self.hostile.set_preview_lie(lie)
            self.hostile.set_price_factor(price)
            self.hostile.set_deposit_fee(fee)
            self.hostile.set_pull_bps(pull_bps)

    @rule(bps=st.integers(0, 2_000), heal=st.booleans())
    def keeper_moves_the_hostile_market(self, bps, heal):
        """The keeper targets `bps` of totalAssets in the hostile market (healed first, or as it is). Whatever
        the market does, a rebalance that goes through kept to the loss limit on the vault's books and left no
        allowance."""
        self.make_ready()
        if heal:
            self.hostile_operator(0, WAD, WAD, 0, BPS)
        vault, h = self.vault, self.hostile
        target = vault.totalAssets() * bps // BPS
        try:
            with boa.env.prank(self.accounts.keeper):
                vault.rebalance([(h.address, target)], DECISION)
        except BoaError:
            event("hostile rebalance: refused")
            return
        event("hostile rebalance: done")
        (done,) = events(vault, "Rebalanced")
        assert done.total_after * BPS >= done.total_before * (BPS - vault.max_loss_bps())
        assert self.token.allowance(vault.address, h.address) == 0

    @rule(order=st.permutations(range(4)), leave_out_hostile=st.booleans())
    def set_withdraw_queue(self, order, leave_out_hostile):
        markets = [*self.listed, self.hostile]
        queue = [markets[i].address for i in order if not (leave_out_hostile and i == 3)]
        with boa.env.prank(self.accounts.admin):
            self.vault.set_withdraw_queue(queue)
        assert self.vault.withdraw_queue() == queue

    @rule(caller=st.sampled_from(["keeper", "guardian"]))
    def report(self, caller):
        vault = self.vault
        stored, reported = vault.totalAssets(), self.state().total
        fall_share = -(-max(stored - reported, 0) * FRACTION // max(stored, 1))
        reason = OVER_BUDGET if caller == "keeper" and fall_share > vault.budgets()[0] else None
        with boa.env.prank(getattr(self.accounts, caller)):
            self.expect(reason, vault.report)
        if reason is None:
            assert vault.totalAssets() == reported

    # ---------------------------------------------------------------- invariants

    @invariant()
    def total_assets_is_idle_plus_booked_holdings_of_listed_markets_only(self):
        vault = self.vault.address
        listed = [*self.listed, self.hostile]
        assert self.vault.markets() == [m.address for m in listed]
        held = sum(self.booked(m.address) for m in listed)
        assert self.vault.total_held() == held
        assert self.vault.totalAssets() == self.token.balanceOf(vault) + held
        for market in self.listed:  # the vault never counts shares it does not hold
            assert self.vault.holdings(market.address)[0] <= market.balanceOf(vault)
        assert self.vault.holdings(self.hostile.address)[0] <= self.hostile.real_balance(vault)
        assert self.markets[UNLISTED].balanceOf(vault) == 0

    @invariant()
    def every_depositor_can_withdraw_up_to_idle_plus_the_healthy_markets(self):
        """Whatever the hostile market does, a depositor's claim is withdrawable up to what idle and the honest
        markets in the withdraw queue pay: the hostile market can only add to it."""
        vault, healthy = self.vault, self.healthy_liquidity()
        for owner in self.depositors:
            amount = min(vault.convertToAssets(vault.balanceOf(owner)), healthy)
            if amount == 0:
                continue
            with boa.env.anchor(), boa.env.prank(owner):
                cash = self.token.balanceOf(owner)
                vault.withdraw(amount, owner, owner)
                assert self.token.balanceOf(owner) == cash + amount

    @invariant()
    def no_holder_can_take_more_than_their_share(self):
        """Claims are pro rata, rounded down, and together never exceed totalAssets.

        The virtual shares (contracts/README.md, Accounting) hold one virtual asset; while a share is worth
        less than at the start they leave part of it to the holders, so a claim may then exceed the exact
        pro-rata share by a fraction of one wei. At or above the starting price it never does.
        """
        vault, holders = self.vault, [*self.depositors, self.accounts.fee_recipient]
        with boa.env.anchor():
            with boa.env.prank(holders[0]):
                vault.withdraw(0, holders[0], holders[0])  # mints the pending fee, so totalSupply is final
            total, supply = vault.totalAssets(), vault.totalSupply()
            below_start = supply > total * self.virtual_shares
            claims = []
            for holder in holders:
                balance = vault.balanceOf(holder)
                claim = vault.convertToAssets(balance)
                slack = supply - 1 if below_start else 0  # < 1 wei
                assert claim * supply <= total * balance + slack
                claims.append(claim)
            assert sum(claims) <= total


def test_vault_state_machine(world):
    vault, token, accounts = world.vault, world.token, world.accounts
    unlisted = deploy_market(token, accounts.operator, UNLISTED)
    carol = boa.env.generate_address("carol")
    fund(token, vault, carol, DEPOSITOR_FUNDS)
    hostile = deploy_hostile_market(token, accounts.operator, 3)
    list_market(vault, accounts.admin, hostile, BASE_CAP_BPS, BASE_CAP_ABS)
    if not hasattr(vault, "inject") or not hasattr(vault.inject, "open_guardrails_for_test"):
        vault.inject_function(OPEN_GUARDRAILS)
    run_state_machine_as_test(
        lambda: VaultMachine(world, unlisted, hostile, (*accounts.depositors, carol)),
        # a third of the profile's examples: each one is a whole 30-step run
        settings=settings(max_examples=max(settings.default.max_examples // 3, 5), stateful_step_count=30),
    )
