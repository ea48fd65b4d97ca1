"""The team's real data in ../shared/data, found by its layout rather than by a folder name agreed in advance.

A market history is a directory laid out as `vaultbot data download` writes it (`market_history.parquet` and
`charts/` of DeFiLlama chart answers, `pools.json`, `news/`) or holding `market_history.parquet|csv`, at
../shared/data itself or in any folder below it (the first in sorted order wins). Recorded single answers live in
../shared/data/recorded/; the yields `/pools` and `/chart` answers are also taken from such a dataset when none is
recorded there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.conftest import SHARED_DATA

# A canonical table first: `vaultbot data download` writes one with coin prices joined beside the raw charts.
HISTORY_NAMES = ("market_history.parquet", "market_history.csv", "charts")
RECORDED = SHARED_DATA / "recorded"


@dataclass(frozen=True)
class RealDataset:
    history: Path  # what `strategy.data.load_market_history` reads
    pools: Path | None  # a DeFiLlama /pools answer
    news: Path | None  # a directory of feeds


@cache
def real_dataset(root: Path = SHARED_DATA) -> RealDataset | None:
    """The first real market history under `root` (see the module docstring), or None."""
    if not root.is_dir():
        return None
    for directory in [root, *sorted(path for path in root.rglob("*") if path.is_dir())]:
        for name in HISTORY_NAMES:
            if (directory / name).exists():
                pools, news = directory / "pools.json", directory / "news"
                return RealDataset(directory / name, pools if pools.is_file() else None,
                                   news if news.is_dir() else None)
    return None


def recorded_answer(name: str) -> bytes | None:
    """The recorded API answer `name` (e.g. defillama-yields-chart.json), or None when there is none."""
    path = RECORDED / name
    if path.is_file():
        return path.read_bytes()
    dataset = real_dataset()
    if dataset is None:
        return None
    if name == "defillama-yields-pools.json" and dataset.pools is not None:
        return dataset.pools.read_bytes()
    if name == "defillama-yields-chart.json" and dataset.history.is_dir():
        charts = sorted(dataset.history.glob("*.json"))
        return charts[0].read_bytes() if charts else None
    return None
