"""Memory figures the benchmarks print (Linux): peak and current resident set size, of this process or another;
and, run as a module, the peak memory of training a model as a function of its rows.

    python -m benchmarks.memory [--pools 12 25 50] [--days 730] [--seed 7]

Each size trains in its own process (`train_artifact` on a synthetic market of that many pools), twice over:
building the features and targets from the history (`vaultbot model train`, the keeper), and on features the
caller built before (`features=`: the backtest's and `walk_forward`'s trainings). The peak is the process's
peak resident set size, reset once the market (and the given features) are in memory, so "added" is what
training adds. A least-squares line through the sizes gives the fixed part (MiB) and the part per labelled row
trained on (KiB/row), and the latter in float64 copies of one row of the feature matrix.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np


def peak_rss_mib(pid: int | str | None = None) -> float:
    """Max resident set size: this process (getrusage, since it started), or the VmHWM of /proc/<pid>/status
    ("self": this process's, since `reset_peak_rss`)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size now (VmRSS): growth of it over a long run is what a leak looks like."""
    return _status_mib(pid, "VmRSS")


def reset_peak_rss() -> None:
    """Start this process's peak resident set size (VmHWM) again from what it holds now (Linux >= 4.0), after
    handing the heap's free pages back (glibc), so that "now" is what is in use rather than what was."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def _status_mib(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


MODES = {"features built": False, "features given": True}


def training_peak(pools: int, days: int, seed: int, features_given: bool) -> dict[str, float]:
    """Train once on a synthetic market of `pools` × `days` in this process: rows, features, resident set size
    before training and its peak during it (MiB)."""
    from strategy.config import ModelSettings
    from strategy.models import train_artifact
    from strategy.models.dataset import model_features
    from strategy.synthetic import generate_market

    market = generate_market(pools, days, seed)
    end = market.history["timestamp"].max()
    features = model_features(market.history, market.news, market.pools) if features_given else None
    reset_peak_rss()
    before = rss_mib()
    artifact = train_artifact(market.history, market.news, market.pools, train_end=end,
                              settings=ModelSettings(seed=seed), features=features)
    return {"rows": artifact.metadata.rows, "features": len(artifact.features), "before": before,
            "peak": peak_rss_mib("self")}


def main() -> None:
    parser = argparse.ArgumentParser(description="peak memory of training a model, per labelled row")
    parser.add_argument("--pools", type=int, nargs="+", default=[12, 25, 50])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(training_peak(args.pools[0], args.days, args.seed, MODES[args.child])))
        return
    for mode in MODES:
        print(f"training, {mode}:\n{'pools':>7} {'rows':>7} {'RSS before':>11} {'peak':>9} {'added':>9}")
        runs = []
        for pools in args.pools:
            out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", mode, "--pools", str(pools),
                                  "--days", str(args.days), "--seed", str(args.seed)],
                                 check=True, capture_output=True, text=True).stdout
            run = json.loads(out.splitlines()[-1])
            runs.append(run)
            print(f"{pools:>7} {run['rows']:>7,} {run['before']:>7.0f} MiB {run['peak']:>5.0f} MiB "
                  f"{run['peak'] - run['before']:>5.0f} MiB")
        if len({run["rows"] for run in runs}) > 1:
            print_fit(runs)


def print_fit(runs: list[dict[str, float]]) -> None:
    """The least-squares line of the peak (and of what training added) against the rows trained on."""
    rows = np.array([run["rows"] for run in runs], dtype=float)
    peak, before = np.array([run["peak"] for run in runs]), np.array([run["before"] for run in runs])
    row_kib = runs[0]["features"] * 8 / 1024  # one float64 row of the feature matrix
    for name, mib in (("peak RSS", peak), ("added by training", peak - before)):
        slope, fixed = np.polyfit(rows, mib, 1)
        print(f"  {name}: {fixed:.0f} MiB + {slope * 1024:.2f} KiB/row "
              f"(= {slope * 1024 / row_kib:.1f} float64 copies of a row of the {runs[0]['features']} features)")


if __name__ == "__main__":
    main()
