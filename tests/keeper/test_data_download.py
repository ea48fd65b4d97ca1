"""`vaultbot data download` against DeFiLlama-shaped answers on 127.0.0.1: the recorded layout loads with the
project's own loaders and backtests; failures are reported, lose nothing and a re-run completes the set."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from devnet.llama_server import NEWS_PATH, SyntheticLlama
from sources.recorder import feed_file_name
from strategy.data import load_market_history, load_news, load_pools
from tests.cli import vaultbot
from tests.keeper.keeper_world import llama
from tests.keeper.llama_payloads import (
    COINS_CHART,
    base_url,
    chart_payload,
    handler_of,
    json_response,
    pools_payload,
    serve_llama,
)
from tests.shared_data import real_dataset


@pytest.fixture(autouse=True)
def own_http_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTBOT_CACHE", str(tmp_path / "cache"))


def download(server: HTTPServer, out: Path, *args: str):
    return vaultbot("data", "download", "--out", str(out), "--yields-url", base_url(server),
                    "--coins-url", base_url(server), *args)


def test_the_recording_loads_and_backtests(httpserver: HTTPServer, llama: SyntheticLlama, tmp_path: Path) -> None:
    serve_llama(httpserver, llama)
    out = tmp_path / "llama"
    result = download(httpserver, out, "--top", "3", "--feed", httpserver.url_for(NEWS_PATH))
    assert result.exit_code == 0, result.output
    assert "recorded 3 pool histories" in result.output and "1 feed(s)" in result.output

    history = load_market_history(out / "charts").frame
    pools = load_pools(out / "pools.json")
    biggest = pools.sort_values("tvl_usd", ascending=False)["pool"].head(3)
    assert set(history["pool"]) == set(biggest)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failures"] == {} and manifest["yields_base_url"] == base_url(httpserver)
    for pool, entry in manifest["pools"].items():
        rows = history[history["pool"] == pool]
        assert entry["rows"] == len(rows) and entry["last_day"] == rows["timestamp"].max().date().isoformat()
    news = load_news(out / "news").frame
    assert len(news) == manifest["feeds"][httpserver.url_for(NEWS_PATH)]["items"] > 0
    # the canonical table: the same rows, with the coin prices of single-token pools joined
    table = load_market_history(out / "market_history.parquet").frame
    assert len(table) == len(history) and set(table["pool"]) == set(history["pool"])
    single = {pool for pool, tokens in zip(pools["pool"], pools["underlying_tokens"], strict=True)
              if len(tokens) == 1 and pool in set(history["pool"])}
    priced = set(table.loc[table["price"].notna(), "pool"])
    assert single and priced == single and manifest["table"]["priced_pools"] == len(single)
    assert 0.5 < table["price"].median() < 2 or not single  # the synthetic tokens' prices, not garbage
    found = real_dataset(tmp_path)  # the layout the tests look for in ../shared/data
    assert found is not None and (found.history, found.pools, found.news) == (
        out / "market_history.parquet", out / "pools.json", out / "news")

    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=60)
    report = tmp_path / "report"
    run = vaultbot("backtest", "run", "--data", str(out / "market_history.parquet"), "--pools", str(out / "pools.json"),
                   "--news", str(out / "news"), "--start", str(start), "--end", str(end), "--strategy",
                   "trailing-best", "--rebalance-every", "7", "--report", str(report))
    assert run.exit_code == 0, run.output
    assert json.loads((report / "report.json").read_text())["strategies"]["trailing-best"]["metrics"]["final_value"] > 0


def test_a_failing_chart_is_reported_the_rest_kept_and_a_rerun_completes(
    httpserver: HTTPServer, llama: SyntheticLlama, tmp_path: Path
) -> None:
    broken = llama.pool_ids[1]
    httpserver.expect_request(f"/chart/{broken}").respond_with_handler(handler_of(404, "no such pool"))
    serve_llama(httpserver, llama)
    out = tmp_path / "llama"
    result = download(httpserver, out, "--top", "4")
    assert result.exit_code == 1
    assert f"failed {broken}" in result.output and "HTTP 404" in result.output
    assert "1 of 5 downloads failed" in result.output  # 4 charts and the coin prices
    assert sorted(path.stem for path in (out / "charts").glob("*.json")) == sorted(set(llama.pool_ids) - {broken})
    assert not list((out / "charts").glob("*.partial"))

    httpserver.clear_all_handlers()
    serve_llama(httpserver, llama)
    again = download(httpserver, out, "--top", "4")
    assert again.exit_code == 0, again.output
    assert sorted(path.stem for path in (out / "charts").glob("*.json")) == sorted(llama.pool_ids)
    assert json.loads((out / "manifest.json").read_text())["failures"] == {}


def test_a_failing_coins_api_keeps_the_charts_and_writes_no_table(httpserver: HTTPServer, llama: SyntheticLlama,
                                                                  tmp_path: Path) -> None:
    httpserver.expect_request(COINS_CHART).respond_with_handler(handler_of(404, "no coins here"))
    serve_llama(httpserver, llama)
    out = tmp_path / "llama"
    result = download(httpserver, out, "--top", "2")
    assert result.exit_code == 1 and "failed coin prices" in result.output and "HTTP 404" in result.output
    assert len(list((out / "charts").glob("*.json"))) == 2 and not (out / "market_history.parquet").exists()
    assert f"--data {out / 'charts'}" in result.output  # what can be used meanwhile


def test_a_malformed_chart_is_a_failure_never_a_file(httpserver: HTTPServer, llama: SyntheticLlama,
                                                     tmp_path: Path) -> None:
    pool = llama.pool_ids[0]
    bad = chart_payload(llama, pool, datetime.now(UTC))
    bad["data"][3]["tvlUsd"] = "lots"
    httpserver.expect_request(f"/chart/{pool}").respond_with_handler(lambda _r: json_response(bad))
    serve_llama(httpserver, llama)
    result = download(httpserver, tmp_path / "llama", "--pool", pool)
    assert result.exit_code == 1 and "data[3]" in result.output and "tvlUsd" in result.output
    assert not (tmp_path / "llama" / "charts" / f"{pool}.json").exists()


@pytest.mark.parametrize("pool_id", ["../../evil", "/tmp/evil", ".hidden", "a/b"])
def test_a_pool_id_that_is_no_plain_file_name_is_never_written(httpserver: HTTPServer, llama: SyntheticLlama,
                                                               tmp_path: Path, pool_id: str) -> None:
    listed = pools_payload(llama, datetime.now(UTC))
    listed["data"].append(dict(listed["data"][0], pool=pool_id))
    httpserver.expect_request("/pools").respond_with_handler(lambda _r: json_response(listed))
    chart = chart_payload(llama, llama.pool_ids[0], datetime.now(UTC))
    httpserver.expect_request(re.compile(r".*(evil|hidden|/b)$")).respond_with_handler(  # a server that answers
        lambda _r: json_response(chart))
    serve_llama(httpserver, llama)
    out = tmp_path / "deep" / "er" / "llama"
    result = download(httpserver, out, "--pool", pool_id, "--pool", llama.pool_ids[0])
    assert "is not a plain file name" in result.output and "Traceback" not in result.output
    written = {path.relative_to(tmp_path) for path in tmp_path.rglob("*.json")}
    assert all(path.parts[:3] == ("deep", "er", "llama") for path in written), written
    assert (out / "charts" / f"{llama.pool_ids[0]}.json").exists()  # the other pool is recorded


def test_charts_of_no_point_are_recorded_without_a_table(httpserver: HTTPServer, llama: SyntheticLlama,
                                                         tmp_path: Path) -> None:
    for pool in llama.pool_ids:
        httpserver.expect_request(f"/chart/{pool}").respond_with_handler(
            lambda _r: json_response({"status": "success", "data": []}))
    serve_llama(httpserver, llama)
    out = tmp_path / "llama"
    result = download(httpserver, out, "--pool", llama.pool_ids[0])
    assert result.exit_code == 0 and result.exception is None, (result.output, result.exception)
    assert (out / "charts" / f"{llama.pool_ids[0]}.json").exists() and not (out / "market_history.parquet").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (("--pool", "not-a-pool"), "DeFiLlama /pools does not list pool not-a-pool"),
    (("--chain", "Solana"), "no pool of the 4 DeFiLlama lists passes the selection"),
])
def test_an_empty_or_unknown_selection_writes_nothing(httpserver: HTTPServer, llama: SyntheticLlama, tmp_path: Path,
                                                      args: tuple[str, ...], expected: str) -> None:
    serve_llama(httpserver, llama)
    result = download(httpserver, tmp_path / "llama", *args)
    assert result.exit_code == 1 and expected in result.output
    assert not (tmp_path / "llama").exists()


def test_an_unreadable_pool_list_or_a_bad_url(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/pools").respond_with_handler(handler_of(404, "gone"))
    result = download(httpserver, tmp_path / "llama")
    assert result.exit_code == 1 and "/pools: HTTP 404" in result.output
    bad = vaultbot("data", "download", "--out", str(tmp_path / "x"), "--yields-url", "ftp://example")
    assert bad.exit_code == 2 and "--yields-url: expected an http(s) URL" in bad.output


def test_feed_file_names_are_slugs_and_never_collide() -> None:
    assert feed_file_name("https://news.example.org/defi/rss?x=1") == "news-example-org-defi-rss-x-1.xml"
    assert feed_file_name("https://a.b/c", taken=["news/a-b-c.xml"]) == "a-b-c-2.xml"
