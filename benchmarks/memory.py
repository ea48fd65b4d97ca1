"""Memory figures the benchmarks print (Linux): peak and current resident set size, of this process or another."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib(pid: int | None = None) -> float:
    """Max resident set size: this process (getrusage), or another one (VmHWM of /proc/<pid>/status)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size now (VmRSS): growth of it over a long run is what a leak looks like."""
    return _status_mib(pid, "VmRSS")


def _status_mib(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")
