"""Benchmark of decision bundles for a keeper of many pools: the bytes a decision publishes and the time
anyone takes to verify it (`vaultbot verify`'s check: read, canonical parse, every hash, the model loaded
and re-executed), against the floor every verifier pays in the same run, the re-execution alone
(features -> forecasts -> allocation, `decisions.replay`).

    python -m benchmarks.decisions [--pools 20] [--days 730] [--seed 7] [--repeat 5]

The keeper's inputs are synthetic (`strategy.synthetic`) stablecoin lending pools with `--days` of history,
as the keeper reads them from DeFiLlama; the vault lists as many of them as it can hold (MAX_MARKETS).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from decisions.bundle import Bundle, decision_bundle, model_path, write_bundle
from decisions.check import check_decision
from decisions.replay import replay
from strategy.config import ModelSettings, StrategyConfig
from strategy.decision_record import input_tables, inputs_document
from strategy.guardrails import DEFAULT_CAP_BPS, DEFAULT_GUARDRAILS, MAX_MARKETS, Guardrails, MarketLimits, VaultState
from strategy.models import ModelArtifact, train_artifact
from strategy.synthetic import generate_market

CHAIN_ID, VAULT = 31337, "0x" + "ab" * 20
VAULT_ASSETS = 10_000_000 * 10**6  # 10M USDC, idle: the first decision spreads it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each measurement (median)")
    args = parser.parse_args()

    market = generate_market(args.pools, args.days, args.seed, stablecoin_lending=True)
    at = market.history["timestamp"].max().floor("D")
    artifact = train_artifact(market.history, market.news, market.pools, train_end=at,
                              settings=ModelSettings(seed=args.seed))
    bundle = _decided_bundle(market.history, market.news, market.pools, at, artifact)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = write_bundle(directory, bundle, artifact)
        verify = _median(args.repeat, lambda: _verified(directory, bundle))
        floor = _median(args.repeat, lambda: replay(bundle.document, artifact))
        model_bytes = sum(f.stat().st_size for f in model_path(directory, artifact.content_hash).iterdir())
        bundle_bytes = path.stat().st_size

    listed = len(bundle.document["config"]["markets"])
    table = Table(title=f"decision bundles: {args.pools} pools ({listed} listed) × {args.days} days of history, "
                        f"{len(market.news)} news items; median of {args.repeat}")
    for column in ("measure", "figure", "floor (same run)", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("verify a decision (s)", f"{verify:.3f}", f"{floor:.3f} re-execution alone", f"{verify / floor:.2f}×")
    table.add_row("bundle per decision (KB)", f"{bundle_bytes / 1e3:,.0f}",
                  f"{len(gzip.compress(bundle.text.encode(), 6)) / 1e3:,.0f} gzipped",
                  f"{bundle_bytes / len(gzip.compress(bundle.text.encode(), 6)):.1f}×")
    table.add_row("model artifact, once per hash (KB)", f"{model_bytes / 1e3:,.0f}", "", "")
    Console().print(table)


def _decided_bundle(history: pd.DataFrame, news: pd.DataFrame, pools: pd.DataFrame, at: pd.Timestamp,
                    artifact: ModelArtifact) -> Bundle:
    """The bundle of the keeper's decision at `at` on an idle vault listing the first MAX_MARKETS pools: the
    targets are the keeper's decision step's (the replay runs exactly it)."""
    listed = list(pools["pool"])[:MAX_MARKETS]
    markets = {pool: f"0x{index + 1:040x}" for index, pool in enumerate(listed)}
    guardrails = Guardrails(**DEFAULT_GUARDRAILS, markets={address: MarketLimits(cap_bps=DEFAULT_CAP_BPS,
                                                                                 cap_abs=VAULT_ASSETS)
                                                           for address in markets.values()})
    state = VaultState(idle=VAULT_ASSETS, positions={}, last_rebalance=0, paused=False)
    chain_time = int(at.timestamp()) + 3600

    def bundle(targets: dict[str, int]) -> Bundle:
        return decision_bundle(
            chain_id=CHAIN_ID, vault=VAULT, timestamp=chain_time,
            inputs=inputs_document(at, input_tables(history, news, pools)), model_hash=artifact.content_hash,
            allocator=StrategyConfig().allocator, markets=markets, guardrails=guardrails, state=state,
            block={"hash": "0x" + "00" * 32, "number": 1, "timestamp": chain_time - 1}, chain_time=chain_time,
            unknown_pools=[], targets=targets)

    return bundle(dict(replay(bundle({}).document, artifact).allocation.trades))


def _verified(directory: Path, bundle: Bundle) -> None:
    check = check_decision(directory, bundle.decision_hash, chain_id=CHAIN_ID, vault=VAULT)
    if not check.ok:
        raise SystemExit(f"the benchmark's own bundle did not verify: {check.verdict}: {check.why}")


def _median(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    main()
