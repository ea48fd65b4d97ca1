"""Benchmark of the keeper left to run: many cycles on a private devnet, as `vaultbot demo` runs them.

A fresh anvil with the deployed vault in a temporary directory, the devnet's depositors in, the keeper on its
devnet defaults (synthetic DeFiLlama served locally, SQLite journal); before every cycle after the first the
chain clock moves on `--chain-hours`. Prints cycle time (median, p95, max), outcomes, rebalances and their gas,
the journal's growth per cycle, and memory: resident set size after the warm-up cycles and at the end (steady
memory over hundreds of cycles is what running for months needs) and peak.

    python -m benchmarks.keeper [--cycles 200] [--chain-hours 6] [--warmup 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from benchmarks.memory import peak_rss_mib, rss_mib
from depositor.accounts import UnlockedSender
from depositor.flows import execute, plan_action
from depositor.vault import open_vault
from devnet.anvil import stop_background
from devnet.config import devnet_config
from devnet.lifecycle import advance_chain, start_devnet
from devnet.synthetic_sources import serving_synthetic_sources
from journal.db import Transaction, TxStatus
from keeper.startup import open_keeper


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
            with serving_synthetic_sources(settings) as served, open_keeper(served) as keeper:
                ready = time.perf_counter() - started
                seconds, outcomes, memory = [], Counter(), {}
                for number in range(args.cycles):
                    if number:
                        advance_chain(keeper.chain.w3, round(args.chain_hours * 3600))
                    began = time.perf_counter()
                    outcomes[keeper.run_cycle().status.value] += 1
                    seconds.append(time.perf_counter() - began)
                    if number + 1 == args.warmup:
                        memory["warm"] = rss_mib()
                memory["end"] = rss_mib()
                with keeper.db.session() as session:
                    mined = select(Transaction.gas_used).where(Transaction.status == TxStatus.MINED)
                    gas = list(session.scalars(mined))
            journal_kib = (Path(home) / "keeper.sqlite").stat().st_size / 1024
        finally:
            stop_background(Path(home))

    cycles = len(seconds)
    print(f"{cycles} cycles, chain clock +{args.chain_hours:g} h each; devnet, deposits and keeper start "
          f"(model training included): {ready:.1f} s")
    print("outcomes: " + ", ".join(f"{status} {count}" for status, count in outcomes.most_common()))
    print(f"cycle time: median {statistics.median(seconds) * 1000:.0f} ms, "
          f"p95 {statistics.quantiles(seconds, n=20)[-1] * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")
    if gas:
        print(f"rebalances mined: {len(gas)}, gas median {statistics.median(gas):,.0f}, max {max(gas):,}")
    print(f"journal: {journal_kib:,.0f} KiB ({journal_kib / cycles:.1f} KiB a cycle)")
    warm = memory.get("warm", float("nan"))
    print(f"memory: {warm:.0f} MiB after {args.warmup} cycles, {memory['end']:.0f} MiB after {cycles} "
          f"({memory['end'] - warm:+.1f} MiB), peak {peak_rss_mib():.0f} MiB")


def _deposit(path: Path, depositors: list[str], whole_tokens: int) -> None:
    """Each devnet depositor deposits, through the depositor tools' own checked flow."""
    vault = open_vault(None, None, path)
    for depositor in depositors:
        units = whole_tokens * 10**vault.asset_decimals
        execute(vault, plan_action(vault, "deposit", depositor, units), UnlockedSender(vault.w3, depositor))


if __name__ == "__main__":
    main()
