"""One keeper cycle: data -> gate -> forecast -> chain state -> allocation -> decision -> simulate -> send.

`Keeper.run_cycle()` journals every cycle (journal.db) and never lets an expected failure escape:

1. Resume: a transaction left signed or sent by an earlier run is resumed with every journaled version of its
   nonce (`TxSender.resume`: the receipt of whichever was mined, else the newest re-broadcast and replaced with
   bumped fees while stuck or priced out, each replacement journaled before broadcast) and its outcome
   recorded; no decision is made while one is pending. One that no version of was mined is abandoned, never
   broadcast again, when the chain it was built on is gone (reset, reorg) or its decision is older than
   `service.decision_max_age_s`.
2. Inputs (`sources.inputs`): a source failure or a data-gate refusal ends the cycle as `refused`; so does
   the cycle's deadline (`service.cycle_deadline_s`), by which every fetch of the cycle ends.
3. Forecasts per pool from what the promotion policy trusts (`keeper.models`: the champion model, or the
   trailing-best rule while it is not trusted), mapped to the vault's markets by `[markets]`.
4. Chain: guardrails and state through `VaultReader`; the gas price for the allocator's costs.
5. Decision: `strategy.decision.decide`, the step the backtester replays (allocation under `[strategy.costs]`
   and the missing-forecast policy, then the guardrail mirror); the record and its hash
   (`strategy.decision_record`) are committed before anything is sent. Verdict `hold` -> `held`, `skip`
   (cooldown, pause) -> `skipped`, `would_revert` -> `reverted` without sending.
6-7. `chain.rebalance.simulate_then_send`: eth_call (a revert ends the cycle as `reverted` with the vault's
   reason; not retried in this cycle; dry-run stops here), then `TxSender`, which hands each signed
   transaction to the journal before broadcasting it; the receipt marks the cycle `rebalanced` (or
   `reverted` when mined with status 0).

Beyond the daily budgets (`keeper.proposals`): a simulation refused with "vault: over daily budget" is proposed
to the guardian instead (`proposed`); an approved proposal is run by the next cycle, before it plans anything.
On a quiet day, a cycle that holds reports the markets' values (`Vault.report`) once the vault's last report is
older than `service.report_interval_s`: between rebalances only a report moves the depositors' share price.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

import requests
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.types import TxReceipt

from chain.errors import ContractRevert, RpcUnavailable
from chain.events import emitted
from chain.rebalance import PROPOSE, REPORT, called_function, propose_call, report_call, simulate_then_send
from chain.tx import Abandoned, BuiltOn, NonceUsed, PendingTx, TxError, TxSender
from chain.vault_reader import VaultReader
from config import Config
from decisions.bundle import decision_bundle, write_bundle
from journal.db import CycleStatus, DatabaseError, Decision, KeeperDB, Transaction, to_hex
from journal.news import NewsArchive
from journal.predictions import predictions_json
from keeper import proposals
from keeper.metrics import KeeperMetrics
from keeper.models import KeeperModels
from sources import DataGateError, SourceError, Sources
from sources.inputs import ModelInputs, gather_inputs
from strategy.allocator import Allocation, AllocatorConfig, MarketForecast
from strategy.costs import allocator_config
from strategy.data.errors import DataError
from strategy.decision import VerdictKind, decide, forecasts_for_markets
from strategy.decision_record import canonical_json
from strategy.guardrails import (
    Guardrails,
    VaultState,
)
from strategy.market_supply import AssetUnit, MarketDepth, besides_vault, depth_on
from strategy.models import ModelError
from strategy.trailing_best import RULE_HASH
from strategy.units import annualised_growth, format_units

log = logging.getLogger(__name__)

# Cycle outcomes that count as the keeper working (for the health check and last-success metric).
SUCCESSFUL = frozenset({CycleStatus.REBALANCED, CycleStatus.HELD, CycleStatus.SKIPPED, CycleStatus.DRY_RUN,
                        CycleStatus.PROPOSED})


@dataclass(frozen=True)
class CycleOutcome:
    """How a cycle ended; `failure_kind` is the coarse reason label of the failure metric."""

    cycle_id: int
    status: CycleStatus
    reason: str | None = None
    failure_kind: str | None = None
    decision_hash: str | None = None
    tx_hash: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESSFUL


@dataclass(frozen=True)
class DecidedRebalance:
    """A decided rebalance, journaled, not yet simulated or sent."""

    cycle_id: int
    decision_id: int
    decision_hash: str
    allocations: list[tuple[str, int]]  # (market, target assets) as `rebalance` names them
    proposal_id: str | None = None  # the guardian's approved proposal it runs, if it is one
    why: str = ""  # what forced it, when it moves the vault back inside its limits


@dataclass(frozen=True)
class VaultChain:
    """The keeper's view of its chain: the vault to read and call, and how to send as the keeper."""

    w3: Web3
    chain_id: int
    vault: Contract
    reader: VaultReader
    sender: TxSender
    keeper_address: str


class _Stop(Exception):
    """Ends a cycle early without an error: held, skipped, a revert the guardrail mirror foresaw, or a refused
    report."""

    def __init__(self, status: CycleStatus, reason: str, failure_kind: str | None = None,
                 tx_hash: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.failure_kind, self.tx_hash = status, reason, failure_kind, tx_hash


class Keeper:
    """Runs cycles for one vault; holds the journal, sources, chain client and model for its lifetime."""

    def __init__(self, config: Config, db: KeeperDB, sources: Sources, chain: VaultChain,
                 models: KeeperModels, markets: Mapping[str, str], news: NewsArchive, *,
                 metrics: KeeperMetrics | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config, self.db, self.sources, self.chain, self.models = config, db, sources, chain, models
        self.news = news  # every item the feeds served
        self.markets = {pool: Web3.to_checksum_address(market) for pool, market in markets.items()}
        self.metrics = metrics
        self.clock = clock
        self._depth: tuple[ModelInputs, dict[str, MarketDepth]] | None = None  # the last inputs' (`_market_depth`)

    # -- the cycle --------------------------------------------------------------------------------------

    def run_cycle(self, *, dry_run: bool = False) -> CycleOutcome:
        started = time.monotonic()
        # Past the deadline every fetch fails as a SourceError naming it: the cycle is refused, journaled.
        self.sources.start_cycle(self.config.service.cycle_deadline_s)
        cycle_id = self.db.start_cycle(dry_run=dry_run)
        log.info("cycle %d started%s", cycle_id, " (dry run)" if dry_run else "")
        decision_hash = None
        try:
            self._resume_pending()
            plan = self._approved_plan(cycle_id) or self.plan(cycle_id, dry_run=dry_run)
            decision_hash = plan.decision_hash
            outcome = self._send(plan, dry_run=dry_run)
        except _Stop as stop:
            outcome = CycleOutcome(cycle_id, stop.status, stop.reason, stop.failure_kind, decision_hash, stop.tx_hash)
        except DatabaseError:
            raise  # without its journal the keeper must not go on
        except Exception as error:
            status, kind = classify(error)
            if kind == "internal":
                log.exception("cycle %d failed unexpectedly", cycle_id)
            outcome = CycleOutcome(cycle_id, status, describe(error), kind, decision_hash)
        if not dry_run:
            self._record_share_price(cycle_id)
        self.db.finish_cycle(cycle_id, outcome.status, outcome.reason)
        duration_s = time.monotonic() - started
        log.log(logging.INFO if outcome.succeeded else logging.WARNING, "cycle %d %s%s", cycle_id,
                outcome.status.value, f": {outcome.reason}" if outcome.reason else "",
                extra={"cycle_id": cycle_id, "status": outcome.status.value, "reason": outcome.reason,
                       "failure_kind": outcome.failure_kind, "decision_hash": outcome.decision_hash,
                       "tx_hash": outcome.tx_hash, "duration_s": round(duration_s, 3), "dry_run": dry_run})
        if self.metrics is not None:
            self.metrics.cycle_finished(outcome.status.value, success=outcome.succeeded,
                                        failure_kind=outcome.failure_kind, reason=outcome.reason,
                                        duration_s=duration_s)
            self.metrics.pending_transactions.set(len(self.db.pending_transactions()))
        return outcome

    def plan(self, cycle_id: int, *, dry_run: bool = False) -> DecidedRebalance:
        """Steps 2-5: inputs, forecasts, chain state, allocation, the journaled decision (a hold reports when
        due, unless dry-run)."""
        now = self.clock()
        inputs = self._inputs(now)
        model = self.models.for_cycle(inputs)
        forecasts = model.forecasts
        guardrails, state = self.chain.reader.guardrails_and_state()
        block = self.chain.w3.eth.get_block("latest")
        self._record_chain_facts(cycle_id, state, block)
        by_market, stale = self._forecasts_by_market(forecasts, guardrails, inputs.unknown_pools)
        listed = [market for market in self.markets.values() if market in guardrails.markets]
        depth = self._market_depth(inputs, state)
        allocator, chain_time = self._allocator(), block["timestamp"] + 1
        verdict = decide(state, guardrails, forecasts_for_markets(listed, by_market, stale, depth), allocator,
                         chain_time)
        allocation = verdict.allocation
        self._observe_prediction(allocation, by_market, state)

        # The bundle (decisions.bundle) holds what was read; its record's hash is the decision hash.
        bundle = decision_bundle(
            chain_id=self.chain.chain_id, vault=self.chain.vault.address, timestamp=int(now.timestamp()),
            inputs=inputs.document,
            model_hash=model.model_hash, allocator=allocator, markets=self.markets, guardrails=guardrails,
            state=state, block=block, chain_time=chain_time, unknown_pools=inputs.unknown_pools,
            asset=self._asset, targets=allocation.trades, vault_in_pool_data=self._vault_in_pool_data)
        write_bundle(self.config.service.decisions_dir, bundle,
                     model.champion if model.model_hash != RULE_HASH else None)
        decision_hash = bundle.decision_hash
        decision_id = self.db.record_decision(
            cycle_id, inputs_hash=bundle.record["inputs_hash"], model_hash=model.model_hash,
            predictions=predictions_json(forecasts, self.markets, depth), targets=allocation.targets,
            allocation_status=allocation.status.value, expected_gain=allocation.expected_gain,
            decision_hash=decision_hash, record=canonical_json(bundle.record),
        )
        if verdict.kind == VerdictKind.HOLD:
            raise self._held(cycle_id, decision_id, verdict.reason(self._assets), block["timestamp"],
                             dry_run=dry_run)
        if verdict.kind == VerdictKind.SKIP:
            raise _Stop(CycleStatus.SKIPPED, verdict.reason(self._assets))
        if verdict.kind == VerdictKind.WOULD_REVERT:
            raise _Stop(CycleStatus.REVERTED, f"would revert, not sent: {verdict.reason(self._assets)}", "revert")
        why = verdict.why(self._assets)
        log.info("cycle %d decided %s: %s%s", cycle_id, decision_hash, allocation.trades, f" ({why})" if why else "")
        return DecidedRebalance(cycle_id, decision_id, decision_hash, list(allocation.trades.items()), why=why)

    def _allocator(self) -> AllocatorConfig:
        """The allocator told what trading costs now: `[strategy.costs]` at the chain's current gas price."""
        strategy = self.config.strategy
        return allocator_config(strategy.allocator, strategy.costs, self.chain.w3.eth.gas_price, self._asset_decimals)

    @cached_property
    def _asset_decimals(self) -> int:
        return self.chain.reader.asset.functions.decimals().call()  # not a whole snapshot for one number

    def _assets(self, units: int) -> str:
        """An amount of the vault's asset as every screen writes it."""
        return format_units(units, self._asset_decimals, self._asset_symbol)

    @cached_property
    def _asset_symbol(self) -> str:
        return self.chain.reader.asset.functions.symbol().call()

    @property
    def _asset(self) -> AssetUnit:
        return AssetUnit(self._asset_symbol, self._asset_decimals)

    def execute(self, plan: DecidedRebalance, *, dry_run: bool) -> CycleOutcome:
        """Steps 6-7: simulate, then (unless dry-run) send and record the receipt."""
        try:
            receipt = simulate_then_send(self.chain.sender, self.chain.vault, plan.allocations, plan.decision_hash,
                                         send=not dry_run,
                                         on_signed=lambda pending: self.journal_signed(plan.decision_id, pending))
        except ContractRevert as revert:
            if revert.receipt is not None:  # mined with status 0: the journal records it as failed, not pending
                self.db.record_receipt(revert.receipt)
            raise
        if receipt is None:
            return CycleOutcome(plan.cycle_id, CycleStatus.DRY_RUN, "simulated with eth_call; dry run, not sent",
                                decision_hash=plan.decision_hash)
        return self._settle(plan.cycle_id, plan.decision_hash, receipt)

    # -- beyond the daily budgets, and quiet days --------------------------------------------------------

    def _approved_plan(self, cycle_id: int) -> DecidedRebalance | None:
        """The oldest of the keeper's proposals the guardian approved, as this cycle's decision (journaled again
        with the same record and hash); None when none is approved."""
        proposal = proposals.approved(proposals.live_proposals(self.db, self.chain.reader))
        if proposal is None:
            return None
        block = self.chain.w3.eth.get_block("latest")
        self._record_chain_facts(cycle_id, self.chain.reader.state(), block)
        record = self.db.proposal(proposal.id)
        assert record is not None  # live_proposals returns only proposals the journal holds
        decision_id = self.db.repeat_decision(record.decision_id, cycle_id)
        log.info("cycle %d runs the approved proposal %s (decision %s)", cycle_id, proposal.id,
                 proposal.decision_hash)
        return DecidedRebalance(cycle_id, decision_id, proposal.decision_hash, list(proposal.allocations),
                                proposal_id=proposal.id)

    def _send(self, plan: DecidedRebalance, *, dry_run: bool) -> CycleOutcome:
        """`execute`; a new plan the vault finds over the daily budgets goes to the guardian instead."""
        try:
            outcome = self.execute(plan, dry_run=dry_run)
        except ContractRevert as revert:
            # an approved proposal refused for the budgets lost its approval (expired): nothing more to ask
            if plan.proposal_id is not None or not proposals.over_budget(revert):
                raise
            return self._propose(plan, revert, dry_run=dry_run)
        if plan.why:
            outcome = replace(outcome, reason=f"{plan.why}: {outcome.reason}")
        if plan.proposal_id is None:
            return outcome
        proposals.live_proposals(self.db, self.chain.reader)  # journals it executed once mined
        return replace(outcome, reason=f"the guardian's approved proposal {plan.proposal_id}: {outcome.reason}")

    def _propose(self, plan: DecidedRebalance, revert: ContractRevert, *, dry_run: bool) -> CycleOutcome:
        """`propose_rebalance` of exactly the planned move, unless one of the keeper's proposals is live."""
        live = proposals.live_proposals(self.db, self.chain.reader)
        if live:
            raise _Stop(CycleStatus.SKIPPED, f"{revert.reason}; {proposals.waiting_text(live[0])}")
        if dry_run:
            return CycleOutcome(plan.cycle_id, CycleStatus.DRY_RUN, f"{revert.reason}: would propose it to the "
                                "guardian; dry run, not sent", decision_hash=plan.decision_hash)
        receipt = self.chain.sender.send(propose_call(self.chain.vault, plan.allocations, plan.decision_hash),
                                         on_signed=partial(self.journal_signed, plan.decision_id))
        return self._settle(plan.cycle_id, plan.decision_hash, receipt)

    def _held(self, cycle_id: int, decision_id: int, reason: str, chain_time: int, *, dry_run: bool) -> _Stop:
        """How a held cycle ends: after `Vault.report()` when the last report is older than
        service.report_interval_s (not in a dry run); a report the vault refuses (its markets fell more than
        the daily loss budget left) ends it as reverted, with the vault's reason."""
        age_s = chain_time - self.chain.reader.last_report()
        if dry_run or age_s < self.config.service.report_interval_s:
            return _Stop(CycleStatus.HELD, reason)
        try:
            receipt = self.chain.sender.send(report_call(self.chain.vault),
                                             on_signed=partial(self.journal_signed, decision_id))
        except ContractRevert as revert:
            if revert.receipt is not None:  # mined with status 0: the journal records it as failed
                self.db.record_receipt(revert.receipt)
            return _Stop(CycleStatus.REVERTED, f"{reason}; the report of the markets' values (the last one "
                                               f"{age_s}s ago) was refused: {revert.reason}", "revert")
        reported = self._settle(cycle_id, None, receipt)
        return _Stop(reported.status, f"{reason}; {reported.reason}", reported.failure_kind, reported.tx_hash)

    def journal_signed(self, decision_id: int, pending: PendingTx) -> None:
        """TxSender's on_signed: the signed transaction, and the chain it was built on, committed before it is
        broadcast."""
        built_on = pending.built_on
        assert built_on is not None  # TxSender signs every transaction it hands over on a block it read
        self.db.record_signed(
            decision_id, sender=self.chain.keeper_address, nonce=pending.nonce, tx_hash=to_hex(pending.tx_hash),
            raw_tx=to_hex(pending.raw_tx), max_fee_per_gas=pending.max_fee_per_gas,
            max_priority_fee_per_gas=pending.max_priority_fee_per_gas, gas_limit=pending.gas_limit,
            function=called_function(self.chain.vault, pending),
            chain_id=pending.chain_id, genesis_hash=to_hex(built_on.genesis_hash),
            built_on_block=built_on.block_number, built_on_hash=to_hex(built_on.block_hash),
        )
        log.info("signed %s (nonce %d), journaled before broadcast", to_hex(pending.tx_hash), pending.nonce,
                 extra={"tx_hash": to_hex(pending.tx_hash), "nonce": pending.nonce,
                        "max_fee_per_gas": pending.max_fee_per_gas})

    # -- restart ----------------------------------------------------------------------------------------

    def recover_interrupted(self) -> None:
        """At start: cycles left running by a crash without a pending transaction are marked failed."""
        pending_cycles = {self.db.decision_of(tx).cycle_id for tx in self.db.pending_transactions()}
        for cycle in self.db.recent_cycles(limit=100):
            if cycle.status == CycleStatus.RUNNING and cycle.id not in pending_cycles:
                self.db.finish_cycle(cycle.id, CycleStatus.FAILED, "interrupted: the keeper stopped during the cycle")

    def _resume_pending(self) -> None:
        """Step 1: settle every transaction an earlier run left signed or sent, before deciding anew."""
        versions_of: dict[tuple[str, int], list[Transaction]] = defaultdict(list)
        for tx in self.db.pending_transactions():  # oldest first: the last of a nonce carries the highest fees
            versions_of[(tx.sender, tx.nonce)].append(tx)
        for versions in versions_of.values():
            newest = versions[-1]
            log.warning("resuming transaction %s (nonce %d, %d versions) left by an earlier run", newest.tx_hash,
                        newest.nonce, len(versions))
            decision = self.db.decision_of(newest)
            try:
                # any version may be the one mined; replacements are journaled like those of a send
                receipt = self.chain.sender.resume([_pending_of(tx) for tx in versions],
                                                   on_signed=partial(self.journal_signed, decision.id),
                                                   stale=self._stale(decision))
            except (TimeExhausted, RpcUnavailable, requests.RequestException) as error:
                raise _Stop(CycleStatus.SKIPPED, f"transaction {newest.tx_hash} is still pending: "
                                                 f"{describe(error)}") from error
            except ContractRevert as revert:
                if revert.receipt is not None:  # mined with status 0: settled, no longer pending
                    self.db.record_receipt(revert.receipt)
                self.db.finish_cycle(decision.cycle_id, CycleStatus.REVERTED, f"resumed: {describe(revert)}")
                continue
            except Abandoned as abandoned:  # never broadcast again; the cycle goes on to decide anew
                for tx in self.db.pending_transactions():  # with a cancel it journaled on the same nonce
                    if (tx.sender, tx.nonce) == (newest.sender, newest.nonce):
                        self.db.mark_abandoned(tx.tx_hash, str(abandoned))
                self.db.finish_cycle(decision.cycle_id, CycleStatus.ABANDONED, f"resumed: {describe(abandoned)}")
                log.warning("%s", abandoned)
                continue
            except NonceUsed as used:  # no version will ever be mined: stop resuming them
                for tx in versions:
                    self.db.mark_failed(tx.tx_hash, str(used))
                self.db.finish_cycle(decision.cycle_id, CycleStatus.FAILED, f"resumed: {describe(used)}")
                continue
            except TxError as error:  # signed by another key: it stays pending, and no new decision is made
                raise _Stop(CycleStatus.SKIPPED, f"transaction {newest.tx_hash} cannot be resumed: "
                                                 f"{describe(error)}") from error
            outcome = self._settle(decision.cycle_id, decision.decision_hash, receipt)
            self.db.finish_cycle(decision.cycle_id, outcome.status, f"resumed after a restart: {outcome.reason}")

    def _stale(self, decision: Decision) -> str | None:
        """Why `decision` is too old to be sent now; None while it is fresh."""
        age_s = (self.clock() - decision.created).total_seconds()
        limit_s = self.config.service.decision_age_s
        if age_s <= limit_s:
            return None
        return (f"stale decision: decided {age_s:.0f}s ago, more than service.decision_max_age_s "
                f"({limit_s:g}s)")

    # -- helpers ----------------------------------------------------------------------------------------

    def _inputs(self, now: datetime) -> ModelInputs:
        sources = self.config.sources
        return gather_inputs(
            self.sources, market_pools=list(self.markets), extra_pools=self.config.model.extra_pools,
            news_feeds=sources.news_feeds, price_coins=sources.price_coins, price_days=sources.price_days,
            price_history_days=sources.price_history_days,
            limits=self.config.gate, now=now, recall_news=self.news.recall,
        )

    def _market_depth(self, inputs: ModelInputs, state: VaultState) -> dict[str, MarketDepth]:
        """Each market's depth on the decision day (its supply besides the vault, base units, and its rate curve's
        elasticity), from its pool's recorded liquidity, utilization and APY: what the allocator weighs the
        vault's own dilution by. The recorded one is the last cycle's when its inputs were these very ones (26 ms
        a cycle otherwise: most cycles' answers did not move); where the pools' data holds the vault
        (`[chain] vault_in_pool_data`), the vault's positions as read on chain are taken out of it."""
        if self._depth is None or self._depth[0] is not inputs:
            by_pool = depth_on(inputs.history, inputs.pools_meta, self._asset, inputs.at)
            self._depth = (inputs, {market: by_pool[pool] for pool, market in self.markets.items()
                                    if pool in by_pool})
        return besides_vault(self._depth[1], state.positions) if self._vault_in_pool_data else self._depth[1]

    @property
    def _vault_in_pool_data(self) -> bool:
        return self.config.chain is not None and self.config.chain.vault_in_pool_data

    def _forecasts_by_market(self, forecasts: Mapping[str, MarketForecast], guardrails: Guardrails,
                             unknown_pools: Sequence[str] = ()) -> tuple[dict[str, MarketForecast], list[str]]:
        """The pools' forecasts keyed by their markets, and the markets whose pools have no fresh data; what
        that means for the allocation is `strategy.decision`'s missing-forecast policy."""
        by_market: dict[str, MarketForecast] = {}
        stale: list[str] = []
        for pool, market in self.markets.items():
            if market not in guardrails.markets:
                log.warning("market %s (pool %s) is not listed by the vault; ignored", market, pool)
            elif pool in unknown_pools:
                log.warning("pool %s has no fresh data: market %s is unknown and is left", pool, market)
                stale.append(market)
            elif pool not in forecasts:
                log.warning("no forecast for pool %s on the decision day; market %s is held", pool, market)
            else:
                by_market[market] = forecasts[pool]
        return by_market, stale

    def _record_chain_facts(self, cycle_id: int, state: VaultState, block: Mapping[str, Any]) -> None:
        self.db.update_cycle(cycle_id, block_number=block["number"], chain_time=block["timestamp"],
                             total_assets=str(state.total))

    def _record_share_price(self, cycle_id: int) -> None:
        """The share price once the cycle's transactions are mined, and when: it moves only when a rebalance or a
        report values the markets, so the realised yield is measured from one cycle's end to the next's."""
        try:
            share_price = self.chain.reader.price_per_share()
            chain_time = self.chain.w3.eth.get_block("latest")["timestamp"]
        except _RPC_ERRORS:  # a cycle that lost its RPC has journaled why; the metric waits for the next one
            return
        previous = self.db.last_share_price(before_cycle=cycle_id)
        self.db.update_cycle(cycle_id, chain_time=chain_time, share_price=str(share_price))
        # previous.share_price is never None (last_share_price finds only cycles that read one): a narrowing
        if (self.metrics is not None and previous is not None and previous.share_price is not None
                and previous.chain_time is not None):
            realised = annualised_growth(int(previous.share_price), share_price, chain_time - previous.chain_time)
            if realised is not None:
                self.metrics.realised_apy.set(realised * 100)

    def _observe_prediction(self, allocation: Allocation, forecasts: Mapping[str, MarketForecast],
                            state: VaultState) -> None:
        if self.metrics is not None and state.total > 0:
            self.metrics.predicted_apy.set(predicted_apy(allocation.targets, forecasts, state.total))

    def _settle(self, cycle_id: int, decision_hash: str | None, receipt: TxReceipt) -> CycleOutcome:
        """The outcome of a mined transaction of the cycle, by the vault function it called."""
        tx = self.db.record_receipt(receipt)
        if self.metrics is not None and tx.fee_paid:
            self.metrics.gas_spent.inc(tx.fee_paid)
        if receipt["status"] != 1:
            return CycleOutcome(cycle_id, CycleStatus.REVERTED, f"transaction {tx.tx_hash} reverted on chain",
                                "revert", decision_hash, tx.tx_hash)
        if tx.function == PROPOSE:
            return CycleOutcome(cycle_id, CycleStatus.PROPOSED,
                                proposals.record_proposed(self.db, self.chain.vault, tx, receipt),
                                decision_hash=decision_hash, tx_hash=tx.tx_hash)
        if tx.function == REPORT:
            return CycleOutcome(cycle_id, CycleStatus.HELD, f"reported the markets' values: transaction "
                                f"{tx.tx_hash} in block {tx.block_number}", tx_hash=tx.tx_hash)
        hashes = [to_hex(event["args"]["decision_hash"]) for event in emitted(self.chain.vault, "Rebalanced", receipt)]
        if hashes != [decision_hash]:
            raise RuntimeError(f"transaction {tx.tx_hash} emitted Rebalanced {hashes}, expected {decision_hash}")
        return CycleOutcome(cycle_id, CycleStatus.REBALANCED, f"transaction {tx.tx_hash} in block {tx.block_number}",
                            decision_hash=decision_hash, tx_hash=tx.tx_hash)


def predicted_apy(targets: Mapping[str, int], forecasts: Mapping[str, MarketForecast], total: int) -> float:
    """The model's APY (percent) of the whole vault after the allocation; idle and unforecast markets earn 0."""
    return sum(amount * forecasts[market].apy_pct for market, amount in targets.items() if market in forecasts) / total


_RPC_ERRORS = (RpcUnavailable, requests.RequestException, TimeExhausted, ConnectionError, Web3Exception)


def classify(error: Exception) -> tuple[CycleStatus, str]:
    """The cycle status and the failure label of an exception that ended a cycle."""
    if isinstance(error, DataGateError):
        return CycleStatus.REFUSED, "data_gate"
    if isinstance(error, SourceError):
        return CycleStatus.REFUSED, "source"
    if isinstance(error, (ContractRevert, ContractLogicError)):
        return CycleStatus.REVERTED, "revert"
    if isinstance(error, _RPC_ERRORS):
        return CycleStatus.FAILED, "rpc"
    if isinstance(error, (ModelError, DataError)):
        return CycleStatus.FAILED, "model"
    return CycleStatus.FAILED, "internal"


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _pending_of(tx: Transaction) -> PendingTx:
    # the journal writes the three together (KeeperDB.record_signed); none for one journaled before it did
    built_on = (None if tx.genesis_hash is None or tx.built_on_block is None or tx.built_on_hash is None
                else BuiltOn(tx.genesis_hash, tx.built_on_block, tx.built_on_hash))
    return PendingTx(nonce=tx.nonce, tx_hash=tx.tx_hash, raw_tx=tx.raw_tx, max_fee_per_gas=tx.max_fee_per_gas,
                     max_priority_fee_per_gas=tx.max_priority_fee_per_gas, gas_limit=tx.gas_limit,
                     built_on=built_on)

