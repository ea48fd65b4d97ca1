"""chain.rpc against real anvils: fail-over at connect and while serving, a dead or hanging RPC,
a wrong chain."""

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import Web3ValidationError

import chain.rpc
from chain.errors import RpcUnavailable
from chain.rpc import connect
from devnet.anvil import AnvilConfig, AnvilProcess
from tests.keeper.test_hostile_rpc import RpcProxy

pytestmark = pytest.mark.anvil


@pytest.fixture
def dead_url() -> str:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A port that accepts connections and never answers (a timeout)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_connect_skips_a_dead_url(anvil: AnvilProcess, dead_url: str):
    w3 = connect([dead_url, anvil.rpc_url], 2.0)
    assert w3.eth.chain_id == 31337 and w3.eth.block_number >= 0
    assert w3.provider.endpoint_uri == anvil.rpc_url


def test_no_answer_names_every_url(dead_url: str, hanging_url: str):
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as raised:
        connect([dead_url, hanging_url], 0.3)
    message = str(raised.value)
    assert dead_url in message and hanging_url in message and "ConnectionError" in message and "Timeout" in message
    assert raised.value.urls == [dead_url, hanging_url]
    assert time.monotonic() - started < 3, "one short timeout per URL, no retry series"


def test_a_url_on_another_chain_is_skipped(anvil: AnvilProcess):
    with pytest.raises(RpcUnavailable, match="serves chain 31337, expected 1"):
        connect([anvil.rpc_url], 2.0, chain_id=1)


# Nested past what the C stack holds once web3 has lifted the recursion limit: json.loads ended the process.
DEEP_ANSWER = b'{"jsonrpc": "2.0", "id": 0, "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("answer", [b"<html>502 Bad Gateway</html>", b'{"jsonrpc": "2.0", "result": "\xff\xfe'],
                         ids=["not JSON", "not UTF-8"])
def test_an_rpc_answering_no_json_fails_over_at_connect_and_while_serving(anvil: AnvilProcess, answer: bytes):
    proxy = RpcProxy(anvil.rpc_url)
    try:
        proxy.raw_answer = answer
        w3 = connect([proxy.url(), anvil.rpc_url], 2.0)
        assert w3.provider.endpoint_uri == anvil.rpc_url
        with pytest.raises(RpcUnavailable, match="answered no JSON-RPC reply"):
            connect([proxy.url()], 2.0)
        proxy.raw_answer = None
        w3 = connect([proxy.url(), anvil.rpc_url], 2.0)
        assert w3.provider.endpoint_uri == proxy.url()
        proxy.raw_answer = answer  # the serving URL turns: the next one answers
        assert w3.eth.block_number == anvil_block(anvil) and w3.provider.endpoint_uri == anvil.rpc_url
    finally:
        proxy.die()


def test_an_rpc_trickling_its_answers_fails_over_at_its_time_out_as_a_whole(anvil: AnvilProcess):
    # Each byte 0.2 s apart resets requests' per-read time-out: one eth_chainId took 20 times its time-out.
    proxy = RpcProxy(anvil.rpc_url)
    try:
        w3 = connect([proxy.url(), anvil.rpc_url], 1.0)
        assert w3.provider.endpoint_uri == proxy.url()
        proxy.trickle_s = 0.2
        started = time.monotonic()
        assert w3.eth.block_number == anvil_block(anvil) and w3.provider.endpoint_uri == anvil.rpc_url
        assert time.monotonic() - started < 3.0  # the proxy's answer alone would take some 10 s
        with pytest.raises(RpcUnavailable, match=r"\(Timeout: no whole answer within 1 s\)"):
            connect([proxy.url()], 1.0)
    finally:
        proxy.die()


def test_an_rpc_answer_past_the_size_limit_fails_over(anvil: AnvilProcess, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(chain.rpc, "MAX_ANSWER_BYTES", 1_000)  # the real limit, 64 MiB, is slow to send
    proxy = RpcProxy(anvil.rpc_url)
    try:
        proxy.raw_answer = b'{"jsonrpc": "2.0", "id": 0, "result": "0x' + b"0" * 2_000 + b'"}'
        w3 = connect([proxy.url(), anvil.rpc_url], 2.0)
        assert w3.provider.endpoint_uri == anvil.rpc_url
        with pytest.raises(RpcUnavailable, match="answered a body of 2,043 bytes, more than the 1,000 allowed"):
            connect([proxy.url()], 2.0)
    finally:
        proxy.die()


def chain_id_answer_with(values: str, count: int) -> bytes:
    """eth_chainId's answer (anvil's chain), carrying `count` of `values` beside it: a body past DENSE_ANSWER_BYTES."""
    return (b'{"jsonrpc": "2.0", "id": 0, "result": "0x7a69", "extra": [' + b",".join([values.encode()] * count)
            + b"]}")


# a log as nodes answer eth_getLogs of the vault's Rebalanced: 21 values (keys included) in some 800 bytes
REBALANCED_LOG = json.dumps({
    "address": "0x" + "ab" * 20, "topics": ["0x" + "11" * 32, "0x" + "22" * 32], "data": "0x" + "00" * 160,
    "blockNumber": "0x1234567", "transactionHash": "0x" + "33" * 32, "transactionIndex": "0x1",
    "blockHash": "0x" + "44" * 32, "logIndex": "0x2", "removed": False})


def test_a_big_rpc_answer_of_more_values_than_logs_hold_fails_over_unparsed(anvil: AnvilProcess) -> None:
    # Parsed, 64 MiB of `{}` took 1.5 GB: past 4 MiB, only the vault's logs are answered, and they are not so dense.
    proxy = RpcProxy(anvil.rpc_url)
    try:
        proxy.raw_answer = chain_id_answer_with("{}", 2_000_000)
        assert len(proxy.raw_answer) > chain.rpc.DENSE_ANSWER_BYTES
        w3 = connect([proxy.url(), anvil.rpc_url], 5.0)
        assert w3.provider.endpoint_uri == anvil.rpc_url
        with pytest.raises(RpcUnavailable, match=r"answered 2,000,00\d JSON values in 6,000,0\d\d bytes, more than "
                                                 r"one per 32 bytes that an answer past 4,194,304 may hold"):
            connect([proxy.url()], 5.0)
        proxy.raw_answer = chain_id_answer_with(REBALANCED_LOG, 6_000)  # some 5 MiB of logs: read
        assert len(proxy.raw_answer) > chain.rpc.DENSE_ANSWER_BYTES
        assert connect([proxy.url()], 5.0).provider.endpoint_uri == proxy.url()
    finally:
        proxy.die()


def test_an_rpc_answer_whose_length_is_a_digit_of_another_script_is_read_to_its_end() -> None:
    # "³" is a digit to str.isdigit, not to int: the declared length is no number, and the body is read as sent
    class Superscript(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "\u00b3")  # sent as latin-1, as HTTP headers are
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'{"jsonrpc": "2.0", "id": 0, "result": "0x7a69"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Superscript)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert connect([url], 2.0).provider.endpoint_uri == url
    finally:
        server.shutdown()
        server.server_close()


def test_an_rpc_answering_json_nested_100000_deep_fails_over_instead_of_ending_the_process(anvil: AnvilProcess):
    # In a process of its own, as the keeper runs, so that the old code's crash is this test failing.
    script = f"""
import sys
import eth_account, web3  # py_ecc, under them, lifts the recursion limit to 100,000
assert sys.getrecursionlimit() >= 100_000
from chain.rpc import connect
from tests.keeper.test_chain_rpc import DEEP_ANSWER
from tests.keeper.test_hostile_rpc import RpcProxy
proxy = RpcProxy({anvil.rpc_url!r})
w3 = connect([proxy.url(), {anvil.rpc_url!r}], 5.0)
proxy.raw_answer = DEEP_ANSWER
print(w3.eth.block_number >= 0, w3.provider.endpoint_uri == {anvil.rpc_url!r})
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]


def test_connect_needs_a_url():
    with pytest.raises(ValueError, match="at least one RPC URL"):
        connect([])


def test_fail_over_while_serving_and_never_to_another_chain(anvil: AnvilProcess, tmp_path):
    first = AnvilProcess(log_path=tmp_path / "first.log").start()
    other_chain = AnvilProcess(AnvilConfig(chain_id=999), log_path=tmp_path / "other.log").start()
    try:
        w3 = connect([first.rpc_url, other_chain.rpc_url, anvil.rpc_url], 2.0)
        assert w3.provider.endpoint_uri == first.rpc_url
        first.stop()  # the serving node dies: the next URL on the same chain takes over
        assert w3.eth.get_block("latest")["number"] == anvil_block(anvil)
        assert w3.provider.endpoint_uri == anvil.rpc_url
        anvil_url = anvil.rpc_url
    finally:
        first.stop()
        other_chain.stop()
    assert w3.eth.chain_id == 31337 and w3.provider.endpoint_uri == anvil_url


def test_the_last_url_dying_raises_rpc_unavailable(tmp_path):
    node = AnvilProcess(log_path=tmp_path / "node.log").start()
    url = node.rpc_url
    w3 = connect([url], 1.0)
    node.stop()
    with pytest.raises(RpcUnavailable, match=f"no RPC answered eth_blockNumber: tried {url}"):
        _ = w3.eth.block_number


class CountingProxy(RpcProxy):
    """The hostile-RPC tests' JSON-RPC proxy, honest, counting the requests it forwards by method."""

    def __init__(self, upstream: str) -> None:
        self.methods: Counter[str] = Counter()
        super().__init__(upstream)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if isinstance(request, dict):  # a batch's calls come back here one by one
            self.methods[request["method"]] += 1
        return super().answer(request)


@pytest.fixture
def counting(anvil: AnvilProcess) -> Iterator[CountingProxy]:
    proxy = CountingProxy(anvil.rpc_url)
    yield proxy
    proxy.die()


def reads(w3: Web3, times: int) -> None:
    """`times` eth_call and eth_estimateGas, the requests web3's validation checks."""
    call = {"to": "0x0000000000000000000000000000000000000001", "data": "0x"}
    for _ in range(times):
        w3.eth.call(call)
        w3.eth.estimate_gas(call | {"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"})


def test_reads_do_not_ask_the_chain_id_again(counting: CountingProxy):
    stock = Web3(Web3.HTTPProvider(counting.url()))
    reads(stock, 10)
    assert counting.methods["eth_chainId"] == 40  # stock web3: twice for each checked request
    counting.methods.clear()
    w3 = connect([counting.url()], 2.0)
    reads(w3, 10)
    assert counting.methods["eth_chainId"] == 3  # the URL checked, the probe at connect, the validation once
    assert counting.methods["eth_call"] == counting.methods["eth_estimateGas"] == 10


def test_validation_stays_and_the_chain_id_is_still_asked_when_asked_for(counting: CountingProxy):
    w3 = connect([counting.url()], 2.0)
    with pytest.raises(Web3ValidationError, match="declared chain ID 5, but the connected node is on 31337"):
        w3.eth.call({"to": "0x0000000000000000000000000000000000000001", "data": "0x", "chainId": 5})
    asked = counting.methods["eth_chainId"]
    counting.lie_chain_id = 1  # what `chain.tx.TxSender` checks before signing sees the node's answer now
    assert w3.eth.chain_id == 1 and counting.methods["eth_chainId"] == asked + 1


def anvil_block(anvil: AnvilProcess) -> int:
    from devnet.anvil import rpc_call

    return int(rpc_call(anvil.rpc_url, "eth_blockNumber"), 16)
