"""Bad input anywhere gets one clear line and a non-zero exit, never a traceback, and nothing is written or sent on
the way: a sweep over every `vaultbot` command with wrong flag values (negative, absurd, non-numeric, beyond
uint256, badly written or reversed dates, unknown names), files that are missing, directories, unreadable, empty,
binary, truncated or malformed (CSV, Parquet, JSON, TOML), and a dead RPC (a closed port on 127.0.0.1).

Each case runs the console script in-process (`tests.cli`), in an empty working directory that is also
$VAULTBOT_HOME; that directory must still be empty afterwards and the input files untouched. A few cases run
the real script in a subprocess (input that crashed the interpreter itself), and a few need the devnet (amounts
are checked against the vault's decimals; the page's request bodies).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer.main
from click.testing import Result

from cli import app
from tests.cli import vaultbot
from tests.depositor.conftest import devnet_json
from tests.test_cli_help import command_paths

if TYPE_CHECKING:
    from web3 import Web3

    from chain.deployment import Deployment

UNREADABLE = "/proc/self/mem"  # a regular file whose first read fails (EIO), even for root
ADDRESS = "0x" + "11" * 20
TX = "0x" + "ab" * 32
UINT256_PLUS_ONE = str(2**256)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DEAD_RPC = f"http://127.0.0.1:{closed_port()}"
CHART = '{"status": "success", "data": [{"timestamp": "2024-01-01T00:00:00Z", "tvlUsd": 1000000, "apy": 4.5}'
HISTORY = "timestamp,pool,apy,apy_base,apy_reward,tvl_usd\n" + "".join(
    f"2024-01-{day:02d},p1,5,5,0,1000000\n" for day in range(1, 29))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad input file, once; the cases refer to them as {in}/NAME."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("inputs")
    garbage = bytes(range(256)) * 8
    texts = {
        "empty.csv": "", "empty.json": "", "empty.toml": "",
        "history.csv": HISTORY,
        "news.csv": "timestamp,title,source,url\n2024-01-02,Pool drained,feed,https://example.org/1\n",
        "garbage.csv": 'timestamp,pool\n"never closed\n1,2,3,4,5\n',
        "header-only.csv": HISTORY.splitlines()[0] + "\n",
        "words.csv": HISTORY.replace("5,5,0,1000000", "five,5,0,lots", 1),
        "truncated.json": CHART[:-25],
        "not-json.json": "{pools: [1, 2",
        "list.json": "[1, 2, 3]",
        "wrong-type.json": CHART.replace("1000000", '"a million"') + "]}",
        "pools.json": '{"status": "success", "data": [{"pool": 7}]}',
        "feed.xml": "<<< not a feed",
        "bad.toml": "[strategy\nseed = 1\n",
        "wrong-type.toml": '[strategy.model]\nhorizon_days = "a week"\n',
        "negative-seed.toml": "[strategy.model]\nseed = -1\n",
        "unknown-key.toml": "[backtest]\ncapitol = 5\n",
        "markets-not-a-table.toml": "[backtest.guardrails]\nmarkets = 5\n",
        "latin-1.toml": "# caf\xe9\n",
        "devnet.json": '{"rpc_url": "http://127.0.0.1:1", "vault": 5}',
        "dead-rpc.toml": (f'[chain]\nrpc_urls = ["{DEAD_RPC}"]\nchain_id = 31337\nvault = "{ADDRESS}"\n'
                          f'raw_key_env = "VAULTBOT_NO_SUCH_KEY"\nrpc_timeout_s = 2\n[markets]\np1 = "{ADDRESS}"\n'
                          '[service]\ndatabase_url = "sqlite:///journal.sqlite"\n'),
        "a-file": "not a directory",
        "window.toml": "[strategy.model]\ntrain_window_days = 99999999999\n",
        "gas-price.toml": "[backtest]\ngas_price_gwei = 1e300\n",
        "native-price.toml": "[strategy.costs]\nnative_price = 1e300\n",
    }
    for name, text in texts.items():
        (folder / name).write_bytes(text.encode("latin-1"))
    for name in ("binary.csv", "binary.parquet", "binary.json", "binary.toml", "binary.xml"):
        (folder / name).write_bytes(garbage)
    pd.read_csv(folder / "history.csv").to_parquet(folder / "history.parquet")
    whole = (folder / "history.parquet").read_bytes()
    (folder / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    pd.DataFrame({"a": [1, 2]}).to_parquet(folder / "wrong-columns.parquet")
    (folder / "deep.json").write_text("[" * 200_000)  # nested past any C stack once web3 raised the recursion limit
    for name in ("empty-dir", "dir.csv", "dir.toml", "artifact"):
        (folder / name).mkdir()
    (folder / "artifact" / "artifact.json").write_bytes(garbage)
    return folder


@dataclass(frozen=True)
class Case:
    args: str  # the command line; {in} is the folder of input files, {dead} a closed RPC port
    says: str  # what the one line names (the flag, the file, the problem)

    @property
    def id(self) -> str:
        return self.args.replace("{in}/", "").replace("{dead}", "dead-rpc")

    def argv(self, folder: Path) -> list[str]:
        return self.args.replace("{in}", str(folder)).replace("{dead}", DEAD_RPC).split()


BT = "backtest run --start 2024-01-01 --end 2024-02-01"
SYN = f"{BT} --synthetic --strategy equal"
LOOK = "backtest lookahead --start 2024-01-01 --end 2024-02-01 --synthetic --strategy equal"
SMALL_MODEL = "--synthetic-days 60 --synthetic-pools 1"
CHAIN = f"--rpc {{dead}} --vault {ADDRESS}"


def at_least(flag: str, low: float) -> str:
    return f"Invalid value for '{flag}': Input should be greater than or equal to {low}"


def at_most(flag: str, high: float) -> str:
    return f"Invalid value for '{flag}': Input should be less than or equal to {high}"


def not_a_number(flag: str, kind: str = "number") -> str:
    return f"Invalid value for '{flag}': Input should be a valid {kind}"


ACT = f"--account 3 --yes {CHAIN}"

CASES = [Case(*case) for case in [
    # backtest run and lookahead: flags
    (f"{BT} --synthetic --start 2024-13-01", "'2024-13-01' is not a date (YYYY-MM-DD)"),
    (f"{BT} --synthetic --start 01/02/2024", "'01/02/2024' is not a date (YYYY-MM-DD)"),
    (f"{BT} --synthetic --end 2024-02-30", "'2024-02-30' is not a date (YYYY-MM-DD)"),
    ("backtest run --start 2024-03-01 --end 2024-02-01 --synthetic", "--start 2024-03-01 is after --end 2024-02-01"),
    (f"{BT} --synthetic --strategy best", "unknown strategy 'best'"),
    ("backtest run --synthetic --start 9999-11-01 --end 9999-12-31",
     "days (--warmup-days 180 before --start 9999-11-01, to --end 9999-12-31) must be between 2009-01-03 and"),
    # the warm-up starts before year 1, which has no calendar date to show (a NotImplementedError traceback)
    ("backtest run --synthetic --start 0001-01-01 --end 0001-03-01", "must be between 2009-01-03 and"),
    (f"{BT}", "give either --data PATH or --synthetic"),
    (f"{BT} --synthetic --news {{in}}/feed.xml", "--news and --pools go with --data"),  # was dropped unread
    (f"{BT} --synthetic --pools {{in}}/feed.xml", "--news and --pools go with --data"),
    (f"{SYN} --capital -5", "--capital must be"),
    (f"{SYN} --capital 0", "--capital must be"),
    (f"{SYN} --capital nan", "--capital must be"),
    (f"{SYN} --capital inf", "--capital must be"),
    (f"{SYN} --capital 1e400", "--capital must be"),
    (f"{SYN} --capital 1e80", "--capital 1e+80 is more than"),
    (f"{SYN} --capital 1e308", "--capital 1e+308 is more than"),  # infinitely many base units
    (f"{SYN} --capital 1e-9", "--capital 1e-09 is less than one base unit of USDC"),
    (f"{SYN} --capital lots", not_a_number("--capital")),
    (f"{SYN} --rebalance-every 0", "--rebalance-every must be at least 1"),
    (f"{SYN} --rebalance-every x", not_a_number("--rebalance-every", "integer")),
    (f"{SYN} --synthetic-pools 0", "at least one pool"),
    (f"{SYN} --synthetic-pools 100000000", "--synthetic-pools 100000000"),
    (f"{SYN} --warmup-days -1", "--warmup-days must be >= 0"),
    (f"{SYN} --warmup-days 100000000", "the synthetic market would span"),
    ("backtest run --start 0001-01-01 --end 9999-12-31 --synthetic --strategy equal", "would span"),
    (f"{SYN} --seed -1", "--seed -1: Input should be greater than or equal to 0"),
    (f"{SYN} --fork-url {{dead}} --fork-block -1", "--fork-block"),
    (f"{SYN} --fork-market nonsense", "--fork-market 'nonsense': expected POOL=0xADDRESS"),
    (f"{SYN} --report {{in}}/a-file", "a-file"),
    (f"{SYN} --report {{in}}/a-file/report", "a-file"),
    (f"{LOOK} --cuts 0", "--cuts must be at least 1"),
    (f"{LOOK} --start 2024-1-1x", "'2024-1-1x' is not a date"),
    (f"{LOOK} --capital nan", "--capital must be"),
    # backtest: data files
    (f"{BT} --data {{in}}/missing.csv", "--data: file not found"),
    (f"{BT} --data {{in}}/empty.csv", "empty.csv: cannot read file"),
    (f"{BT} --data {{in}}/binary.csv", "binary.csv"),
    (f"{BT} --data {{in}}/garbage.csv", "garbage.csv"),
    (f"{BT} --data {{in}}/header-only.csv", "the market history is empty"),
    (f"{BT} --data {{in}}/words.csv", "words.csv, line 2, field 'apy': expected a number, got 'five'"),
    (f"{BT} --data {{in}}/binary.parquet", "binary.parquet: cannot read file"),
    (f"{BT} --data {{in}}/truncated.parquet", "truncated.parquet: cannot read file"),
    (f"{BT} --data {{in}}/wrong-columns.parquet", "wrong-columns.parquet, field 'timestamp': missing column"),
    (f"{BT} --data {{in}}/empty.json", "empty.json, line 1: malformed JSON"),
    (f"{BT} --data {{in}}/binary.json", "binary.json: cannot read file"),
    (f"{BT} --data {{in}}/truncated.json", "truncated.json, line 1: malformed JSON"),
    (f"{BT} --data {{in}}/not-json.json", "not-json.json, line 1: malformed JSON"),
    (f"{BT} --data {{in}}/list.json", "list.json: expected a JSON object, got list"),
    (f"{BT} --data {{in}}/wrong-type.json", "wrong-type.json, data[0], field 'tvlUsd': expected a number"),
    (f"{BT} --data {{in}}/empty-dir", "empty-dir: no .json files"),
    (f"{BT} --data {{in}}/dir.csv", "dir.csv: no .json files"),
    (f"{BT} --data {UNREADABLE}", UNREADABLE),
    (f"{BT} --data {{in}}/history.csv --pools {{in}}/pools.json", "pools.json, data[0], field 'pool'"),
    (f"{BT} --data {{in}}/history.csv --pools {{in}}/binary.json", "binary.json: cannot read file"),
    (f"{BT} --data {{in}}/history.csv --pools {{in}}/empty-dir", "empty-dir"),
    (f"{BT} --data {{in}}/history.csv --news {{in}}/feed.xml", "feed.xml: not an RSS or Atom feed"),
    (f"{BT} --data {{in}}/history.csv --news {{in}}/news.csv", "--news needs --pools"),
    (f"{BT} --data {{in}}/history.csv --news {{in}}/binary.xml --pools {{in}}/pools.json", "binary.xml"),
    (f"{BT} --data {{in}}/history.csv --news {{in}}/empty-dir --pools {{in}}/pools.json", "empty-dir"),
    # backtest: config files
    (f"{SYN} --config {{in}}/missing.toml", "missing.toml does not exist"),
    (f"{SYN} --config {{in}}/dir.toml", "dir.toml does not exist (or is not a file)"),
    (f"{SYN} --config {{in}}/binary.toml", "cannot read config"),
    (f"{SYN} --config {{in}}/latin-1.toml", "cannot read config"),
    (f"{SYN} --config {UNREADABLE}", "cannot read config"),
    (f"{SYN} --config {{in}}/bad.toml", "bad.toml is not valid TOML"),
    (f"{SYN} --config {{in}}/wrong-type.toml", "key strategy.model.horizon_days"),
    (f"{SYN} --config {{in}}/negative-seed.toml", "key strategy.model.seed"),
    (f"{SYN} --config {{in}}/unknown-key.toml", "key backtest.capitol"),
    (f"{SYN} --config {{in}}/markets-not-a-table.toml", "key backtest.guardrails.markets"),
    (f"{SYN} --config {{in}}/window.toml", "key strategy.model.train_window_days"),
    (f"{SYN} --config {{in}}/gas-price.toml", "key backtest.gas_price_gwei"),
    (f"{SYN} --config {{in}}/native-price.toml", "key strategy.costs.native_price"),
    # model train, evaluate, explain
    ("model train --data {in}/missing.csv", "--data: file not found"),
    ("model train --data {in}/binary.parquet", "binary.parquet: cannot read file"),
    ("model train --data {in}/wrong-type.json", "field 'tvlUsd'"),
    ("model evaluate --data {in}/garbage.csv", "garbage.csv"),
    ("model evaluate --data {in}/empty-dir", "empty-dir: no .json files"),
    ("model train --train-end 2024-13-01", "'2024-13-01' is not a date (YYYY-MM-DD)"),
    ("model train --train-end 01/02/2024", "'01/02/2024' is not a date (YYYY-MM-DD)"),
    (f"model train --seed -1 {SMALL_MODEL}", "--seed -1: Input should be greater than or equal to 0"),
    (f"model train --config {{in}}/negative-seed.toml {SMALL_MODEL}", "key strategy.model.seed"),
    ("model train --synthetic-pools 0", at_least("--synthetic-pools", 1)),
    ("model train --synthetic-days 10", at_least("--synthetic-days", 60)),
    ("model train --synthetic-days 100000000", "the synthetic market would span 100,000,000 days (--synthetic-days)"),
    ("model evaluate --synthetic-pools 100000000", "--synthetic-pools 100,000,000: at most 1,000"),
    ("model train --config {in}/wrong-type.toml", "key strategy.model.horizon_days"),
    ("model train --config {in}/empty-dir", "empty-dir does not exist (or is not a file)"),
    ("model train --news {in}/feed.xml", "--news and --pools go with --data"),
    (f"model train {SMALL_MODEL} --out {{in}}/a-file", "a-file"),
    (f"model train {SMALL_MODEL} --out {{in}}/a-file/model", "a-file"),
    ("model evaluate --test-days 0", at_least("--test-days", 1)),
    ("model evaluate --fold-days -3", at_least("--fold-days", 1)),
    ("model evaluate --fold-days 99999999999", at_most("--fold-days", 36500)),
    ("model evaluate --seed -1", "--seed -1: Input should be greater than or equal to 0"),
    ("model explain --artifact {in}/missing", "no artifact.json"),
    ("model explain --artifact {in}/a-file", "no artifact.json"),
    ("model explain --artifact {in}/artifact", "artifact"),
    ("model explain --top 0", at_least("--top", 1)),
    # keeper run, once, status, verify
    ("keeper once --config {in}/missing.toml", "missing.toml does not exist"),
    ("keeper once --config {in}/dir.toml", "dir.toml does not exist (or is not a file)"),
    ("keeper once --config {in}/binary.toml", "cannot read config"),
    ("keeper once --config {in}/empty.toml", "key chain (env VAULTBOT_CHAIN): missing key"),
    ("keeper run --config {in}/wrong-type.toml", "key strategy.model.horizon_days"),
    ("keeper status --config {in}/bad.toml", "is not valid TOML"),
    (f"keeper verify {TX} --config {UNREADABLE}", "cannot read config"),
    ("keeper once --log-level LOUD", "LOUD"),
    ("keeper run --log-format xml", "'xml' is not one of"),
    ("keeper status --limit 0", at_least("--limit", 1)),
    ("keeper verify 0x1234", "not a transaction hash"),
    ("keeper once", "no usable devnet"),
    ("keeper once --config {in}/dead-rpc.toml", "no RPC answered eth_chainId"),
    ("keeper run --config {in}/dead-rpc.toml", "no RPC answered eth_chainId"),
    (f"keeper verify {TX} --config {{in}}/dead-rpc.toml", "no RPC answered eth_chainId"),
    # devnet up, down, status
    ("devnet up --port -1", at_least("--port", 0)),
    ("devnet up --port 70000", at_most("--port", 65535)),
    ("devnet up --markets 0", "--markets"),
    ("devnet up --markets 9", "--markets"),
    ("devnet up --markets many", not_a_number("--markets", "integer")),
    ("devnet status", "no devnet is running"),
    ("devnet up --json {in}/history.csv", "history.csv is not a valid devnet deployment"),
    ("devnet status --json {in}/binary.json", "no devnet is running"),
    ("devnet down --json {in}/history.csv", "history.csv is not a valid devnet deployment"),
    # data download
    ("data download --out out --top 0", at_least("--top", 1)),
    ("data download --out out --min-tvl -1", at_least("--min-tvl", 0)),
    ("data download --out out --min-tvl nan", "--min-tvl"),
    ("data download --out out --yields-url not-a-url", "--yields-url: expected an http(s) URL"),
    ("data download --out out --coins-url ftp://example.org", "--coins-url: expected an http(s) URL"),
    ("data download --out out --yields-url {dead}", "connection failed"),
    ("data download --out {in}/a-file --yields-url {dead}", "a-file"),
    # vault: the chain or the deployment is the problem, before any amount is read
    (f"vault info {CHAIN}", "no RPC answered eth_chainId"),
    (f"vault info --rpc not-a-url --vault {ADDRESS}", "--rpc 'not-a-url' is not an http(s) URL"),
    (f"vault info --rpc ws://127.0.0.1:1 --vault {ADDRESS}", "--rpc 'ws://127.0.0.1:1' is not an http(s) URL"),
    ("vault info --rpc {dead} --vault 0xzz", "--vault '0xzz' is not an address"),
    ("vault info", "give --rpc and --vault, or start a devnet"),
    ("vault info --json {in}/devnet.json", "devnet.json is not a valid devnet deployment"),
    ("vault info --json {in}/binary.json", "binary.json is not a valid devnet deployment"),
    (f"vault info --json {UNREADABLE}", f"{UNREADABLE} is not a valid devnet deployment"),
    ("vault info --json {in}/empty-dir", "no devnet deployment at"),
    ("vault info --decisions {in}/a-file", "is a file"),
    (f"vault balance {CHAIN} --account 3", "no RPC answered eth_chainId"),
    (f"vault deposit 5 {ACT}", "no RPC answered eth_chainId"),
    (f"vault deposit -5 {ACT}", "No such option: -5"),
    (f"vault deposit 5 {ACT} --slippage lots", "--slippage: 'lots' is not a tolerance"),
    (f"vault withdraw 5 {ACT} --slippage 101%", "--slippage: '101%' must be a whole number of basis points"),
    (f"vault withdraw 5 --yes {CHAIN} --account {{in}}/binary.json", "no RPC answered eth_chainId"),
    (f"vault redeem all {ACT}", "no RPC answered eth_chainId"),
    (f"vault approve 0x12 {ACT}", "no RPC answered eth_chainId"),
    (f"vault reject 0x12 {ACT}", "no RPC answered eth_chainId"),
    # verify
    ("verify 0x12 --bundle {in}/empty-dir", "TX: not a transaction hash"),
    (f"verify {TX} --bundle {{in}}/a-file", "a-file: not a directory"),
    (f"verify {TX} --bundle {{in}}/empty-dir {CHAIN}", "no RPC answered eth_chainId"),
    (f"verify {TX} --bundle {{in}}/empty-dir --rpc not-a-url --vault {ADDRESS}",
     "--rpc 'not-a-url' is not an http(s) URL"),
    (f"verify {TX} --bundle {{in}}/empty-dir --json {{in}}/devnet.json",
     "devnet.json is not a valid devnet deployment"),
    (f"verify {TX} --bundle ftp://example.org/bundles {CHAIN}", "not a directory, nor an http(s) URL"),
    (f"verify {TX} {CHAIN}", "no RPC answered eth_chainId"),
    # decisions export
    ("decisions export --out {in}/a-file", "a-file is a file, not a directory"),
    ("decisions export --out {in}/a-file/archive", "a-file is a file, not a directory"),
    ("decisions export --out out --from 2024-13-01", "'2024-13-01' is not a date (YYYY-MM-DD)"),
    ("decisions export --out out --to 01/02/2024", "'01/02/2024' is not a date (YYYY-MM-DD)"),
    ("decisions export --out out --from 2024-02-01 --to 2024-01-01", "--from 2024-02-01 is after --to 2024-01-01"),
    ("decisions export --out out", "no usable devnet"),
    ("decisions export --out out --json {in}/devnet.json", "no usable devnet"),
    ("decisions export --out out --config {in}/missing.toml", "missing.toml does not exist"),
    ("decisions export --out out --config {in}/bad.toml", "is not valid TOML"),
    ("decisions export --out out --config {in}/empty.toml", "key chain (env VAULTBOT_CHAIN): missing key"),
    ("decisions export --out out --config {in}/dead-rpc.toml", "no keeper journal at"),
    ("decisions export --out out --config {in}/dead-rpc.toml --json {in}/devnet.json",
     "give --config or --json, not both"),
    # web
    ("web --port 70000", at_most("--port", 65535)),
    ("web --timeout 0", at_least("--timeout", 0.1)),
    (f"web {CHAIN}", "no RPC answered eth_chainId"),
    (f"web --rpc not-a-url --vault {ADDRESS}", "--rpc 'not-a-url' is not an http(s) URL"),
    ("web --json {in}/devnet.json", "devnet.json is not a valid devnet deployment"),
    ("web --decisions {in}/none", "does not exist"),
    # demo
    ("demo --cycles -1", at_least("--cycles", 0)),
    ("demo --chain-hours -1", at_least("--chain-hours", 0)),
    ("demo --log-level LOUD", "LOUD"),
    ("demo --deposit lots", "--deposit: 'lots' is not a number"),
    ("demo --deposit -5", "--deposit: must be more than 0"),
    ("demo --json {in}/history.csv", "history.csv is not a valid devnet deployment"),
]]

USAGE = re.compile(r"^Usage: .+\nTry '.+ --help' for help\.\n╭─ Error ─+╮\n(?P<panel>(│.*│\n)+)╰─+╯\n?$")


def one_clear_line(result: Result) -> str:
    """The refusal's message, after checking it is an error exit without a traceback, on one line (`error: ...`),
    or on Typer's usage block for a bad flag; a config report of several problems lists them one per line."""
    assert result.exit_code in (1, 2), f"exit {result.exit_code}:\n{result.output}"
    assert "Traceback" not in result.output
    return clear_line(result.output)


def clear_line(output: str) -> str:
    usage = USAGE.match(output)
    if usage is not None:  # the message may wrap inside the panel: one line, as Typer draws it
        return " ".join(line.strip("│ ") for line in usage["panel"].splitlines())
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), f"not an error line:\n{output}"
    several = re.search(r": \d+ problems$", lines[0])
    assert len(lines) == 1 or (several and all(line.startswith("  key ") for line in lines[1:])), \
        f"more than one line:\n{output}"
    return " ".join(lines)


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` with its size and modification time: what a command may not change."""
    return {str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory that is also $VAULTBOT_HOME (default journals, reports, devnet JSON)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULTBOT_HOME", str(tmp_path))
    monkeypatch.delenv("VAULTBOT_NO_SUCH_KEY", raising=False)
    return tmp_path  # the root logger is restored after every test (tests/conftest.py)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case: Case, inputs: Path, workdir: Path) -> None:
    before = files_under(inputs)
    message = one_clear_line(vaultbot(*case.argv(inputs)))
    assert case.says in message, message
    assert files_under(workdir) == {}, "written on the way"
    assert files_under(inputs) == before, "an input file was changed"


def test_the_sweep_covers_every_command() -> None:
    """A new command gets its bad-input cases here."""
    commands = {" ".join(path) for path, command in command_paths(typer.main.get_command(app))
                if not getattr(command, "commands", None) and path}
    swept = {case.args.split(" --")[0].split(" {")[0] for case in CASES}
    covered = {name for name in commands if any(args == name or args.startswith(name + " ") for args in swept)}
    assert covered == commands


# ---- the real script in a subprocess: input that crashed the interpreter, not just the command


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    vaultbot_script = Path(sys.executable).with_name("vaultbot")
    return subprocess.run([str(vaultbot_script), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "VAULTBOT_HOME": str(cwd)})


@pytest.mark.parametrize("command", [
    ["backtest", "run", "--start", "2024-01-01", "--end", "2024-02-01", "--data"],
    ["model", "train", "--data"],
])
def test_json_nested_past_the_stack_is_one_line(command: list[str], inputs: Path, tmp_path: Path) -> None:
    """web3 (through py_ecc) raises the recursion limit to 100,000, past what the C stack holds: a deeply nested
    JSON file must be refused by its depth, not end the process with a segmentation fault."""
    done = script(*command, str(inputs / "deep.json"), cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    message = clear_line(done.stdout + done.stderr)
    assert "deep.json: malformed JSON: nested deeper than" in message
    assert files_under(tmp_path) == {}


def test_a_model_artifact_nested_past_the_stack_is_one_line(inputs: Path, tmp_path: Path) -> None:
    # `model explain` read artifact.json with json.loads: a segmentation fault (found by probing)
    artifact = tmp_path / "model"
    artifact.mkdir()
    (artifact / "artifact.json").write_text((inputs / "deep.json").read_text())
    done = script("model", "explain", "--artifact", str(artifact), cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert clear_line(done.stdout + done.stderr) == (f"error: model artifact {artifact}: unreadable or corrupt: "
                                                     f"nested deeper than 256 levels")


@pytest.fixture
def deep_json_server() -> Iterator[str]:
    """A local server whose every answer is a 200 KB JSON body nested 200,000 deep."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Deep(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"[" * 200_000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_feed_nested_past_the_stack_is_one_line(deep_json_server: str, tmp_path: Path) -> None:
    """The same depth from a data source (DeFiLlama's /pools here; the keeper reads it the same way)."""
    done = script("data", "download", "--out", str(tmp_path / "out"), "--yields-url", deep_json_server, cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "nested deeper than" in clear_line(done.stdout + done.stderr)
    assert files_under(tmp_path) == {}


# ---- on the devnet: amounts are read against the vault's decimals, and the page's requests


@pytest.mark.anvil
@pytest.mark.parametrize(("args", "says"), [
    (("deposit", UINT256_PLUS_ONE), f"AMOUNT: '{UINT256_PLUS_ONE}' is more than any token amount"),
    (("deposit", "1e80"), "AMOUNT: '1e80' is more than any token amount"),
    (("deposit", "--", "-5"), "AMOUNT: must be more than 0, got '-5'"),
    (("withdraw", "nan"), "AMOUNT: 'nan' is not a finite number"),
    (("redeem", "0.0000000000000000001"), "SHARES: '0.0000000000000000001' has more than 18 decimal places"),
    (("deposit", "5", "--min-shares", UINT256_PLUS_ONE), "--min-shares"),
    (("deposit", "1,00"), "AMOUNT: '1,00' has a comma that does not separate thousands"),
    (("withdraw", "1.000,5"), "AMOUNT: '1.000,5' has a comma that does not separate thousands"),
    (("deposit", "\u0663"), "AMOUNT: '\u0663' is not a number"),  # Arabic-Indic three: it deposited 3
])
def test_bad_amounts_send_nothing(args: tuple[str, ...], says: str, devnet_json: Path, w3: Web3,
                                  devnet: Deployment) -> None:
    depositor = devnet.depositors[0]
    nonce = w3.eth.get_transaction_count(depositor)
    dash = args.index("--") if "--" in args else len(args)
    flags = ["--json", str(devnet_json), "--account", "3", "--yes"]
    message = one_clear_line(vaultbot("vault", *args[:dash], *flags, *args[dash:]))
    assert says in message, message
    assert w3.eth.get_transaction_count(depositor) == nonce


@pytest.mark.anvil
@pytest.mark.usefixtures("chain_snapshot")
def test_a_redemption_that_would_pay_nothing_sends_nothing(devnet_json: Path, w3: Web3, devnet: Deployment) -> None:
    """A tenth of a millionth of a share is worth less than a base unit of USDC: the default guard, 0.5 % below
    a preview of 0, would let it burn the shares for nothing."""
    flags = ["--json", str(devnet_json), "--account", "3", "--yes"]
    assert vaultbot("vault", "deposit", "100", *flags).exit_code == 0
    nonce = w3.eth.get_transaction_count(devnet.depositors[0])
    message = one_clear_line(vaultbot("vault", "redeem", "0.0000001", *flags))
    assert "the redemption would pay nothing for 0.00 vbUSD shares (less than one base unit" in message, message
    assert w3.eth.get_transaction_count(devnet.depositors[0]) == nonce


@pytest.mark.anvil
def test_the_page_answers_a_body_nested_past_the_stack_with_400(devnet_json: Path, tmp_path: Path) -> None:
    """The page's request bodies (at most 64 KiB) can nest 65,536 deep: a 400, and the server stays up."""
    server = subprocess.Popen([str(Path(sys.executable).with_name("vaultbot")), "web", "--json", str(devnet_json),
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path)
    try:
        line = server.stdout.readline() if server.stdout else ""
        url = re.search(r"serving http://([\d.]+):(\d+)/", line)
        assert url is not None, line + (server.stderr.read() if server.poll() is not None and server.stderr else "")
        host, port = url[1], int(url[2])
        status, body = post(host, port, "/api/plan", b"[" * 65_536)
        assert status == 400 and b"nested deeper than 256 levels" in body, (status, body)
        assert server.poll() is None, "the server died"
        assert post(host, port, "/api/plan", b"{}")[0] == 400  # and still answers
    finally:
        server.terminate()
        server.wait(timeout=10)


def post(host: str, port: int, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json", "Host": f"{host}:{port}"})
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


@pytest.mark.anvil
@pytest.mark.parametrize(("where", "why"), [("asset", "a view reverted"), ("market", "a view reverted"),
                                            ("depositor", "no contract at that address"),
                                            ("empty", "no contract at that address")])
def test_a_vault_address_that_is_no_vault_is_one_line(where: str, why: str, devnet_json: Path,
                                                      devnet: Deployment) -> None:
    """The token, a market, an account and an address without code: each answers the vault's views with a
    revert or nothing, named in one line with what the chain holds there and what to check."""
    address = {"asset": devnet.asset, "market": devnet.markets[0].address, "depositor": devnet.depositors[0],
               "empty": ADDRESS}[where]
    for command in (("vault", "info"), ("vault", "balance", "--account", "3")):
        message = one_clear_line(vaultbot(*command, "--json", str(devnet_json), "--vault", address))
        assert f"{address} on {devnet.rpc_url} does not answer as this vault does ({why}): " in message, message
        assert "is --vault the vault's address and --rpc its chain?" in message


@pytest.mark.anvil
@pytest.mark.usefixtures("chain_snapshot")
def test_a_vault_whose_asset_has_no_code_is_not_called_an_address_without_code(
        devnet_json: Path, w3: Web3, devnet: Deployment) -> None:
    """The vault is there but its asset's code is gone: the vault's address is not the one without code."""
    assert w3.provider.make_request("anvil_setCode", [devnet.asset, "0x"]).get("error") is None
    message = one_clear_line(vaultbot("vault", "info", "--json", str(devnet_json)))
    assert f"{devnet.vault} on {devnet.rpc_url} does not answer as this vault does (" in message, message
    assert "(its answers do not decode)" in message and "no contract" not in message, message


class LyingRpc:
    """A JSON-RPC server on 127.0.0.1 that forwards to the devnet but answers `method` with `result`."""

    def __init__(self, upstream: str, method: str, result: object) -> None:
        from tests.keeper.test_hostile_rpc import RpcProxy

        class Liar(RpcProxy):
            def answer(self, request):  # type: ignore[no-untyped-def]
                if isinstance(request, dict) and request.get("method") == method:
                    return {"jsonrpc": "2.0", "id": request["id"], "result": result}
                return super().answer(request)

        self.proxy = Liar(upstream)


@pytest.mark.anvil
@pytest.mark.parametrize(("method", "result", "says"), [
    ("eth_blockNumber", "0xzz", "eth_blockNumber answered '0xzz', not a hex number"),
    ("eth_blockNumber", "0x", "eth_blockNumber answered '0x', not a hex number"),
    ("eth_call", {"a": [1]}, "eth_call answered \"{'a': [1]}\", not hex data"),
    ("eth_call", "0x", "does not answer as this vault does (its answers do not decode)"),
    ("eth_call", "0x01", "does not answer as this vault does (its answers do not decode)"),
])
def test_an_rpc_whose_answers_make_no_sense_is_one_line(method: str, result: object, says: str,
                                                        devnet: Deployment) -> None:
    liar = LyingRpc(devnet.rpc_url, method, result).proxy
    try:
        message = one_clear_line(vaultbot("vault", "info", "--rpc", liar.url(), "--vault", devnet.vault))
    finally:
        liar.die()
    assert says in message, message


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1"])
def test_an_rpc_url_requests_cannot_parse_is_one_line(url: str, tmp_path: Path) -> None:
    message = one_clear_line(vaultbot("vault", "info", "--rpc", url, "--vault", ADDRESS,
                                      "--json", str(tmp_path / "none.json")))
    assert "no RPC answered eth_chainId" in message and "InvalidURL" in message, message


@pytest.mark.anvil
def test_a_devnet_json_for_another_chain_is_one_line(devnet_json: Path, tmp_path: Path) -> None:
    other = tmp_path / "devnet.json"
    other.write_text(json.dumps(json.loads(devnet_json.read_text()) | {"chain_id": 1}))
    message = one_clear_line(vaultbot("vault", "info", "--json", str(other)))
    assert "serves chain 31337, expected 1" in message, message


@pytest.mark.parametrize(("vault", "says"), [
    ("", "--vault '' is not an address"),
    ("0x59b670e9fa9d0a427751af201d676719a970857B", "its mixed case is not its EIP-55 checksum"),
])
def test_a_vault_address_mistyped_is_one_line(vault: str, says: str, tmp_path: Path) -> None:
    message = one_clear_line(vaultbot("vault", "info", "--rpc", "http://127.0.0.1:1", "--vault", vault,
                                      "--json", str(tmp_path / "none.json")))
    assert says in message, message


def test_a_model_out_that_cannot_be_written_is_one_line_after_training(workdir: Path) -> None:
    """/proc takes no new directory, which only writing finds out: the trained model's save ends in one line."""
    result = vaultbot("model", "train", "--synthetic-days", "120", "--synthetic-pools", "3", "--out", "/proc/vb-m")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: --out: cannot write to /proc/vb-m: ")
