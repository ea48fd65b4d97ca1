"""`python -m benchmarks [name ...]`: run every benchmark (or the named ones) with its default settings.

Each runs in its own process, so its peak-memory figure is its own.
"""

import subprocess
import sys

BENCHMARKS = ("gas", "strategy", "memory", "backtest", "backtest_chain", "keeper", "decisions", "real_data")


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or BENCHMARKS:
        print(f"\n== benchmarks.{name} ==", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
