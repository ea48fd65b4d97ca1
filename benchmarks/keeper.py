"""Benchmark of the keeper left to run: many cycles on a private devnet, as `vaultbot demo` runs them.

A fresh anvil with the deployed vault in a temporary directory, the devnet's depositors in, the keeper on its
devnet defaults (synthetic DeFiLlama served locally, SQLite journal); before every cycle after the first the
chain clock moves on `--chain-hours`, and the server is asked once, untimed, so that a new market day's rates
are set on the devnet's markets (`devnet.synthetic_sources`: some 55 ms, four transactions) before the cycle,
not inside its first request. Prints cycle time (median, p95, max), outcomes, rebalances and their gas,
the journal's growth per cycle, and memory: resident set size after the warm-up cycles and at the end (steady
memory over hundreds of cycles is what running for months needs) and peak.

It prints the cycle's floor too, measured in the same run right after each cycle on what that cycle did
(`Floor`): its JSON-RPC requests posted again as raw HTTP bodies (those it sent, as it batched them; no
transaction sent again), the forecasts of the model or rule that decided from its feature rows already built,
and `strategy.decision.decide` (allocation and guardrail mirror) on the same state and forecasts; and the
ratio of the median cycle to the median floor. Then the same with the cycle's data requests (DeFiLlama, news)
sent again as plain HTTP GETs, uncached and unparsed: the synthetic DeFiLlama answers from this process, so its
time to build an answer is in both; and once more with those answers decoded by the standard library
(`json.loads`, `xml.etree`) and nothing checked, the least any reader of them does. The rest of a cycle
(checking its data, features, hashing and writing its decision bundle, the journal) is what the ratios
measure. The cycle time is also given apart for the cycles whose inputs moved (another inputs hash than the
cycle before's: new answers parsed, features built) and the others, and the moved cycles' median beside their
own floors with the data requests.

    python -m benchmarks.keeper [--cycles 200] [--chain-hours 6] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import requests
from sqlalchemy import select

from benchmarks.memory import peak_rss_mib, rss_mib
from config import Config
from depositor.accounts import UnlockedSender
from depositor.flows import execute, plan_action
from depositor.vault import open_vault
from devnet.anvil import stop_background
from devnet.config import devnet_config
from devnet.lifecycle import advance_chain, start_devnet
from devnet.synthetic_sources import serving_synthetic_sources
from journal.db import Decision, Transaction, TxStatus
from keeper import cycle as keeper_cycle
from keeper import models as keeper_models
from keeper.cycle import Keeper
from keeper.startup import open_keeper

SENDS = frozenset({"eth_sendRawTransaction", "eth_sendTransaction"})  # not posted again by the floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--chain-hours", type=float, default=6.0, help="chain time between cycles")
    parser.add_argument("--warmup", type=int, default=20, help="cycles before the first memory reading")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vaultbot-keeper-bench-") as home:
        path = Path(home) / "devnet.json"
        started = time.perf_counter()
        deployment = start_devnet(path).deployment
        try:
            _deposit(path, deployment.depositors, 25_000)
            settings = devnet_config(path)
            with serving_synthetic_sources(settings) as served, open_keeper(served) as keeper, \
                    Floor.watching(keeper) as floor:
                ready = time.perf_counter() - started
                seconds, floors, outcomes, memory, cycle_ids = [], [], Counter(), {}, []
                for number in range(args.cycles):
                    if number:
                        advance_chain(keeper.chain.w3, round(args.chain_hours * 3600))
                        _new_market_day(served, floor.session)
                    began = time.perf_counter()
                    with floor.recording():
                        outcome = keeper.run_cycle()
                    seconds.append(time.perf_counter() - began)
                    outcomes[outcome.status.value] += 1
                    cycle_ids.append(outcome.cycle_id)
                    floors.append(floor.seconds())
                    if number + 1 == args.warmup:
                        memory["warm"] = rss_mib()
                memory["end"] = rss_mib()
                with keeper.db.session() as session:
                    mined = select(Transaction.gas_used).where(Transaction.status == TxStatus.MINED)
                    gas = list(session.scalars(mined))
                    inputs_of = dict(session.execute(select(Decision.cycle_id, Decision.inputs_hash)).all())
            journal_kib = (Path(home) / "keeper.sqlite").stat().st_size / 1024
        finally:
            stop_background(Path(home))

    cycles = len(seconds)
    print(f"{cycles} cycles, chain clock +{args.chain_hours:g} h each; devnet, deposits and keeper start "
          f"(model training included): {ready:.1f} s")
    print("outcomes: " + ", ".join(f"{status} {count}" for status, count in outcomes.most_common()))
    print(f"cycle time: median {statistics.median(seconds) * 1000:.0f} ms, "
          f"p95 {statistics.quantiles(seconds, n=20)[-1] * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")
    moved = _moved([inputs_of.get(cycle_id) for cycle_id in cycle_ids])
    print("  " + _by_inputs(seconds, moved))
    cycle_s = statistics.median(seconds)
    part_ms = {part: statistics.median(floor[part] for floor in floors) * 1000 for part in Floor.PARTS}
    floor_s = _median_of(floors, Floor.BARE)
    print(f"floor: median {floor_s * 1000:.0f} ms (raw JSON-RPC of the same requests {part_ms['rpc']:.0f} ms, "
          f"forecasts from the built features {part_ms['forecasts']:.0f} ms, decide {part_ms['decide']:.0f} ms); "
          f"cycle / floor: {cycle_s / floor_s:.1f}x")
    data_s, decoded_s = _median_of(floors, Floor.WITH_DATA), _median_of(floors, Floor.PARTS)
    print(f"floor with the same data requests, raw HTTP ({part_ms['data']:.0f} ms): median {data_s * 1000:.0f} ms; "
          f"cycle / that: {cycle_s / data_s:.1f}x")
    print(f"  and their answers decoded by the standard library ({part_ms['decode']:.0f} ms): median "
          f"{decoded_s * 1000:.0f} ms; cycle / that: {cycle_s / decoded_s:.1f}x")
    if any(moved):
        moved_s = statistics.median(s for s, m in zip(seconds, moved, strict=True) if m)
        moved_floors = [f for f, m in zip(floors, moved, strict=True) if m]
        moved_floor_s, moved_decoded_s = _median_of(moved_floors, Floor.WITH_DATA), _median_of(moved_floors,
                                                                                             Floor.PARTS)
        print(f"  the cycles whose inputs moved: median {moved_s * 1000:.0f} ms, their floor with the data requests "
              f"{moved_floor_s * 1000:.0f} ms; cycle / that: {moved_s / moved_floor_s:.1f}x; with the answers "
              f"decoded {moved_decoded_s * 1000:.0f} ms; cycle / that: {moved_s / moved_decoded_s:.1f}x")
    if gas:
        print(f"rebalances mined: {len(gas)}, gas median {statistics.median(gas):,.0f}, max {max(gas):,}")
    print(f"journal: {journal_kib:,.0f} KiB ({journal_kib / cycles:.1f} KiB a cycle)")
    warm = memory.get("warm", float("nan"))
    print(f"memory: {warm:.0f} MiB after {args.warmup} cycles, {memory['end']:.0f} MiB after {cycles} "
          f"({memory['end'] - warm:+.1f} MiB), peak {peak_rss_mib():.0f} MiB")


class Floor:
    """What a cycle costs with nothing in the way, measured on what the cycle just did (module docstring)."""

    BARE = ("rpc", "forecasts", "decide")
    WITH_DATA = (*BARE, "data")
    PARTS = (*WITH_DATA, "decode")  # run in this order: "decode" decodes what "data" fetched

    def __init__(self, keeper: Keeper) -> None:
        self.keeper, self.provider = keeper, keeper.chain.w3.provider
        self.bodies: list[bytes] = []  # JSON-RPC, as the keeper posted them
        self.gets: list[tuple[str, str, Any]] = []  # the sources' requests: method, URL, query
        self.calls: dict[str, list[tuple[Callable[..., Any], tuple, dict]]] = {"forecasts": [], "decide": []}
        self.session = requests.Session()
        self._recording = False

    @classmethod
    @contextmanager
    def watching(cls, keeper: Keeper) -> Iterator[Floor]:
        """Records, while `recording`, the keeper's JSON-RPC bodies, its sources' requests, and its forecasts' and
        decision's calls."""
        floor = cls(keeper)
        provider, session = floor.provider, keeper.sources.session
        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(provider, "make_request", floor._single(provider.make_request)))
            stack.enter_context(mock.patch.object(provider, "make_batch_request",
                                                  floor._batch(provider.make_batch_request)))
            stack.enter_context(mock.patch.object(session, "request", floor._get(session.request)))
            for part, module, name in (("forecasts", keeper_models, "policy_forecasts"),
                                       ("decide", keeper_cycle, "decide")):
                stack.enter_context(mock.patch.object(module, name, floor._call(part, getattr(module, name))))
            yield floor

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.bodies.clear()
        self.gets.clear()
        for calls in self.calls.values():
            calls.clear()
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def seconds(self) -> dict[str, float]:
        """Each part of the floor of the cycle just recorded: its requests sent again raw, one HTTP request each
        as the keeper sent it, and its calls run again."""
        url, headers = self.provider.endpoint_uri, {"Content-Type": "application/json"}
        answers: list[bytes] = []
        parts = {"rpc": lambda: [self.session.post(url, data=body, headers=headers, timeout=30)
                                 for body in self.bodies],
                 "data": lambda: answers.extend(self.session.request(method, where, params=query, timeout=30).content
                                                for method, where, query in self.gets),
                 "decode": lambda: [_decoded(answer) for answer in answers]}
        for part, calls in self.calls.items():
            parts[part] = lambda calls=calls: [function(*args, **kwargs) for function, args, kwargs in calls]
        timings = {}
        for part in self.PARTS:
            began = time.perf_counter()
            parts[part]()
            timings[part] = time.perf_counter() - began
        return timings

    def _single(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(method: str, params: Any) -> Any:
            if self._recording and method not in SENDS:
                self.bodies.append(self.provider.encode_rpc_request(method, params))
            return make_request(method, params)
        return recorded

    def _batch(self, make_batch_request: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(batch: list[tuple[str, Any]]) -> Any:
            if self._recording and not SENDS & {method for method, _ in batch}:
                self.bodies.append(self.provider.encode_batch_rpc_request(batch))
            return make_batch_request(batch)
        return recorded

    def _get(self, request: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if self._recording:
                self.gets.append((method, url, kwargs.get("params")))
            return request(method, url, *args, **kwargs)
        return recorded

    def _call(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if self._recording:
                self.calls[part].append((function, args, kwargs))
            return function(*args, **kwargs)
        return recorded


def _median_of(floors: list[dict[str, float]], parts: tuple[str, ...]) -> float:
    return statistics.median(sum(floor[part] for part in parts) for floor in floors)


def _decoded(answer: bytes) -> Any:
    """An answer as the standard library reads it, with no check: JSON (DeFiLlama) or XML (a news feed)."""
    return json.loads(answer) if answer.lstrip()[:1] in (b"{", b"[") else ET.fromstring(answer)


def _moved(inputs_hashes: list[str | None]) -> list[bool]:
    """Whether each cycle's inputs hash differs from the cycle before's (or it decided nothing)."""
    return [now is None or now != before for before, now in zip([None, *inputs_hashes[:-1]], inputs_hashes,
                                                                strict=True)]


def _by_inputs(seconds: list[float], moved: list[bool]) -> str:
    """The median cycle time of the cycles whose inputs moved (`_moved`), and of the others."""
    parts = {"inputs moved": [s for s, m in zip(seconds, moved, strict=True) if m],
             "inputs as the cycle before": [s for s, m in zip(seconds, moved, strict=True) if not m]}
    return "; ".join(f"{label}: {len(times)} cycles, median {statistics.median(times) * 1000:.0f} ms"
                     for label, times in parts.items() if times)


def _new_market_day(served: Config, session: requests.Session) -> None:
    """Ask the synthetic server once, untimed, so that a new market day's rates are set on chain
    (`devnet.synthetic_sources.ChainMarket`) before the cycle: the devnet's work, not the keeper's."""
    session.get(f"{served.sources.yields_base_url}/pools", timeout=30).raise_for_status()


def _deposit(path: Path, depositors: list[str], whole_tokens: int) -> None:
    """Each devnet depositor deposits, through the depositor tools' own checked flow."""
    vault = open_vault(None, None, path)
    for depositor in depositors:
        units = whole_tokens * 10**vault.asset_decimals
        execute(vault, plan_action(vault, "deposit", depositor, units), UnlockedSender(vault.w3, depositor))


if __name__ == "__main__":
    main()
