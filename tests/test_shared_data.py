"""Tests switch to the team's real data by its layout: whatever folder of ../shared/data holds it."""

from __future__ import annotations

from pathlib import Path

from tests.shared_data import real_dataset


def test_a_downloaded_dataset_is_found_in_any_folder(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not data")
    dataset = tmp_path / "defillama-2026-11"
    (dataset / "charts").mkdir(parents=True)
    (dataset / "news").mkdir()
    (dataset / "pools.json").write_text("{}")
    found = real_dataset(tmp_path)
    assert found is not None
    assert (found.history, found.pools, found.news) == (dataset / "charts", dataset / "pools.json", dataset / "news")


def test_a_table_at_the_top_without_pools_or_news(tmp_path: Path) -> None:
    (tmp_path / "market_history.csv").write_text("timestamp,pool,apy\n")
    found = real_dataset(tmp_path)
    assert found is not None and found.history == tmp_path / "market_history.csv"
    assert found.pools is None and found.news is None


def test_no_dataset_means_synthetic(tmp_path: Path) -> None:
    (tmp_path / "recorded").mkdir()
    assert real_dataset(tmp_path) is None
    assert real_dataset(tmp_path / "missing") is None
