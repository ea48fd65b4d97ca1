"""The README's commands, run as written (issue 14), so that README and CLI cannot drift apart again.

Every line of README.md's shell blocks (```bash, ```sh, ```shell, ```console) is a command a user pastes: it
runs here, in a copy of the checkout (its top-level entries linked into a temporary folder beside a link to
../shared), after `vaultbot demo`, as the README's main job describes, and must exit 0 without a traceback.
The blocks are read as the shell reads them: `\\` continues a line, `#` starts a comment, `;` separates
commands, `NAME=value` sets a variable for the rest of its block, `$NAME` expands. Any other shell operator
(a pipe, a redirection) and any command that is not `vaultbot` fail the test, and so does a `vaultbot` line in
a block of another language: synopsis notation (`info | balance [ACCOUNT]`) cannot creep back in.

What the README cannot know and the test supplies, each for a stated reason:
- `$TX`, a rebalance's transaction hash: the last one the demo printed.
- `$ARCHIVE_RPC` and `$FORK_BLOCK`, an archive node and a block of its chain: a fresh anvil, a few blocks mined.
- DeFiLlama, for `data download` (tests have no internet): a server on 127.0.0.1 answering from the team's real
  dataset (../shared/data, itself recorded from such answers), named by the command's own --yields-url and
  --coins-url.
- `keeper.toml`, the user's keeper configuration: one for the demo's devnet on synthetic data, its journal the
  demo's, its key variable set.
- `web` and `keeper run` serve until stopped: they run until they serve (the page answers, a cycle has ended),
  then get SIGINT and must exit 0. `devnet down` runs last, since it stops the devnet the others need.
Out of scope: `./run` (sets up the machine and runs the suite), `pip` and `npm`. The commands that reproduce
the README's measured tables on the real dataset (they read ../shared/data) are marked slow.
"""

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from web3 import Web3

from devnet.config import ANVIL_KEEPER_KEY, DEVNET_KEY_ENV
from devnet.llama_server import is_coins_chart
from tests.cli import vaultbot
from tests.conftest import REPO_ROOT, SHARED_DATA
from tests.keeper.tomlfile import toml_text
from tests.shared_data import RealDataset, real_dataset, recorded_answer
from vaultbot.paths import STATE_DIR_ENV

pytestmark = pytest.mark.anvil

README = REPO_ROOT / "README.md"
SHELL_FENCES = ("bash", "sh", "shell", "console")
OUT_OF_SCOPE = ("./run", "pip", "npm")
REAL_DATA = "../shared/data/"  # commands reading it reproduce the README's measured tables: minutes each
ARCHIVE_BLOCKS = 16  # mined on the archive node's stand-in before the fork example forks at its last
SERVICE_READY = {  # a service's line once it does its job; then it is stopped
    ("web",): re.compile(r"serving http://"),
    ("keeper", "run"): re.compile(r"cycle \d+ (?!started|decided|runs)"),
}
RUNS_LAST = ("devnet", "down")
SERVICE_TIMEOUT_S = 180


# ---- reading the README's blocks as the shell would


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in the README
    text: str  # as written, without comments and continuations
    words: tuple[str, ...]  # shell words, variables not expanded yet
    variables: Mapping[str, str] = field(default_factory=dict)  # set earlier in its block

    def expanded(self, known: Mapping[str, str]) -> list[str]:
        names = {**known, **self.variables}

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name not in names:
                raise AssertionError(f"README.md:{self.line} uses ${name}, which nothing defines: {self.text}")
            return names[name]

        return [re.sub(r"\$(?:(\w+)|\{(\w+)\})", value, word) for word in self.words]


@dataclass(frozen=True)
class Readme:
    commands: list[Command]
    problems: list[str]  # lines the shell or this test cannot run as they are written


def read_readme(text: str) -> Readme:
    commands: list[Command] = []
    problems: list[str] = []
    fence: str | None = None  # the open block's language
    variables: dict[str, str] = {}
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fence = line.strip().removeprefix("```").strip() if fence is None else None
            variables = {}
            continue
        if fence is None:
            continue
        if fence not in SHELL_FENCES:
            if line.lstrip().startswith("vaultbot "):
                problems.append(f"README.md:{number}: a vaultbot command in a ```{fence or ''} block: make it ```bash")
            continue
        if not pending:
            if fence == "console" and not line.startswith("$ "):
                continue  # a console block's other lines are what the commands printed
            start = number
            line = line.removeprefix("$ ") if fence == "console" else line
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical, pending = pending + line, ""
        for words in _shell_commands(logical, start, problems):
            assignment = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", words[0]) if len(words) == 1 else None
            if assignment:
                variables[assignment.group(1)] = assignment.group(2)
            elif words[0] in OUT_OF_SCOPE:
                continue
            elif words[0] != "vaultbot":
                problems.append(f"README.md:{start}: {words[0]!r} is not a vaultbot command: {logical.strip()}")
            else:
                commands.append(Command(start, " ".join(words), tuple(words[1:]), dict(variables)))
    return Readme(commands, problems)


def _shell_commands(line: str, number: int, problems: list[str]) -> Iterator[list[str]]:
    """The `;`-separated commands of one logical line, as shell words; other operators are problems."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token == ";":
            if words:
                yield words
            words = []
        elif set(token) <= set(lexer.punctuation_chars):
            problems.append(f"README.md:{number}: shell operator {token!r}, which runs no single command: "
                            f"{line.strip()}")
            return
        else:
            words.append(token)
    if words:
        yield words


def test_the_reader_refuses_synopsis_notation_and_other_shells() -> None:
    """What the README used to say: alternatives as pipes, a command in a block that is not shell."""
    readme = read_readme("```bash\nvaultbot keeper status | verify TX\nls -l\nD=x ; vaultbot a $D \\\n  b # c\n```\n"
                         "```text\nvaultbot vault info\n```\n```console\n$ vaultbot e\nprinted\n```\n")
    assert readme.problems == [
        "README.md:2: shell operator '|', which runs no single command: vaultbot keeper status | verify TX",
        "README.md:3: 'ls' is not a vaultbot command: ls -l",
        "README.md:8: a vaultbot command in a ```text block: make it ```bash",
    ]
    assert [(command.line, command.expanded({})) for command in readme.commands] == [(4, ["a", "x", "b"]), (11, ["e"])]


README_TEXT = README.read_text()
COMMANDS = read_readme(README_TEXT).commands


def test_the_readme_has_only_commands_this_test_runs() -> None:
    readme = read_readme(README_TEXT)
    assert readme.problems == []
    assert len(readme.commands) >= 20, "the reader found too few commands: has the README's fence syntax changed?"


# ---- the world the README's commands run in: a checkout after `vaultbot demo`


@dataclass
class World:
    checkout: Path
    variables: dict[str, str]
    llama_url: str | None  # the DeFiLlama stand-in; None without the team's real dataset
    env: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from devnet.anvil import AnvilProcess

    base = tmp_path_factory.mktemp("readme")
    checkout = base / "checkout"
    checkout.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name != ".vaultbot":  # the devnet state is the demo's, made below
            (checkout / entry.name).symlink_to(entry)
    if SHARED_DATA.parent.is_dir():
        (base / SHARED_DATA.parent.name).symlink_to(SHARED_DATA.parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(checkout)
        patch.delenv(STATE_DIR_ENV, raising=False)  # the devnet lives in ./.vaultbot, as for a user
        patch.setenv(DEVNET_KEY_ENV, ANVIL_KEEPER_KEY)  # the key variable keeper.toml names
        demo = vaultbot("demo", "--cycles", "2")
        try:
            assert demo.exit_code == 0, demo.output
            tx_hashes = re.findall(r"transaction (0x[0-9a-f]{64})", demo.output)
            assert tx_hashes, demo.output
            _write_keeper_config(checkout)
            with AnvilProcess(log_path=base / "archive.log") as archive, _llama_stand_in(real_dataset()) as llama:
                archive_w3 = Web3(Web3.HTTPProvider(archive.rpc_url))
                archive_w3.provider.make_request("anvil_mine", [ARCHIVE_BLOCKS])
                variables = {"TX": tx_hashes[-1], "ARCHIVE_RPC": archive.rpc_url,
                             "FORK_BLOCK": str(archive_w3.eth.block_number)}
                yield World(checkout, variables, llama, dict(os.environ))
        finally:
            vaultbot("devnet", "down")  # never leave the demo's anvil behind


def _write_keeper_config(checkout: Path) -> None:
    """keeper.toml as a user would write it for the demo's devnet: synthetic data, the demo's journal and model."""
    state = checkout / ".vaultbot"
    deployment = json.loads((state / "devnet.json").read_text())
    table = {
        "chain": {"rpc_urls": [deployment["rpc_url"]], "chain_id": deployment["chain_id"],
                  "deployment": ".vaultbot/devnet.json", "raw_key_env": DEVNET_KEY_ENV},
        "sources": {"synthetic": {}},
        "model": {"artifact_dir": ".vaultbot/model"},
        "service": {"database_url": f"sqlite:///{state / 'keeper.sqlite'}", "metrics_port": 0},
    }
    (checkout / "keeper.toml").write_text(toml_text(table))


@contextmanager
def _llama_stand_in(dataset: RealDataset | None) -> Iterator[str | None]:
    """DeFiLlama's yields and coins APIs on 127.0.0.1 (its URL; None without the dataset), answering from the team's
    real dataset: `/pools` lists its pools that have a chart, `/chart/{pool}` is that chart, and the coins `/chart`
    is the recorded coins answer."""
    charts_dir = None if dataset is None else dataset.history.parent / "charts"
    if dataset is None or dataset.pools is None or not charts_dir.is_dir():
        yield None
        return
    from vaultbot.wsgi import serve_wsgi

    charts = {path.stem: path.read_bytes() for path in charts_dir.glob("*.json")}
    listed = json.loads(dataset.pools.read_text())
    pools = json.dumps({**listed, "data": [row for row in listed["data"] if row["pool"] in charts]}).encode()
    coins = recorded_answer("defillama-coins-chart.json") or b'{"coins": {}}'

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = unquote(environ.get("PATH_INFO", ""))
        body = (pools if path == "/pools" else coins if is_coins_chart(path)
                else charts.get(path.removeprefix("/chart/")) if path.startswith("/chart/") else None)
        status = "200 OK" if body is not None else "404 Not Found"
        body = body if body is not None else b"not found\n"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = serve_wsgi(app, "127.0.0.1", 0, name="llama-stand-in")
    try:
        yield server.url
    finally:
        server.stop()


# ---- running each command


def _reads_real_data(command: Command) -> bool:
    return REAL_DATA in command.text or any(REAL_DATA in value for value in command.variables.values())


def _downloaded(commands: list[Command]) -> set[str]:
    """Where the README's `data download` commands write (their --out): what later commands read."""
    return {command.words[command.words.index("--out") + 1] for command in commands
            if command.words[:2] == ("data", "download") and "--out" in command.words[:-1]}


def _ordered(commands: list[Command]) -> list[Any]:
    last = [c for c in commands if c.words[:2] == RUNS_LAST]
    return [pytest.param(command, id=f"README.md:{command.line} {command.text}",
                         marks=[pytest.mark.slow] if _reads_real_data(command) else [])
            for command in [c for c in commands if c not in last] + last]


@pytest.mark.parametrize("command", _ordered(COMMANDS))
def test_readme_command(command: Command, world: World) -> None:
    args = command.expanded(world.variables)
    if _reads_real_data(command) and real_dataset() is None:
        pytest.skip(f"needs the team's real dataset in {SHARED_DATA}")
    if world.llama_url is None and (args[:2] == ["data", "download"] or any(
            arg == out or arg.startswith(f"{out}/") for arg in args for out in _downloaded(COMMANDS))):
        pytest.skip(f"the DeFiLlama stand-in (and so what `data download` records) answers from the team's real "
                    f"dataset in {SHARED_DATA}")
    if args[:2] == ["data", "download"]:
        args += ["--yields-url", world.llama_url, "--coins-url", world.llama_url]
    ready = next((pattern for words, pattern in SERVICE_READY.items() if tuple(args[:len(words)]) == words), None)
    if ready is not None:
        code, output = _serve_until(ready, args, world)
    else:
        result = vaultbot(*args, input="y\n")  # a prompt is answered as a user who ran the command would
        code, output = result.exit_code, result.output
    assert "Traceback" not in output, f"{command.text}\n{output}"
    assert code == 0, f"README.md:{command.line}: {command.text} exited {code}\n{output}"


def _serve_until(ready: re.Pattern[str], args: list[str], world: World) -> tuple[int, str]:
    """Runs a service until it prints `ready` (and, for the page, answers), then stops it with SIGINT."""
    process = subprocess.Popen([str(Path(sys.executable).with_name("vaultbot")), *args], cwd=world.checkout,
                               env=world.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_forward, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        while (line := _next_line(lines, output)) is not None:
            if "cannot listen on" in line:
                pytest.skip(f"another process on this machine holds the README's port: {line.strip()}")
            if ready.search(line):
                if args[0] == "web":
                    url = re.search(r"serving (\S+)/ ", line).group(1)
                    assert requests.get(url + "/api/vault", timeout=60).status_code == 200
                break
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    while _next_line(lines, output) is not None:
        pass
    return code, "".join(output)


def _forward(stream: Iterable[str], lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _next_line(lines: "queue.Queue[str | None]", output: list[str]) -> str | None:
    """The service's next line (kept in `output`), None once it closed its output."""
    try:
        line = lines.get(timeout=SERVICE_TIMEOUT_S)
    except queue.Empty:
        raise AssertionError(f"nothing printed for {SERVICE_TIMEOUT_S} s:\n{''.join(output)}") from None
    if line is not None:
        output.append(line)
    return line
