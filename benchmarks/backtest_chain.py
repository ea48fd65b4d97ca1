"""Benchmark of chain mode: one strategy replayed on the real contracts on anvil, against the same replay in fast
mode and against anvil's own limit. Prints steps (days) per second, the JSON-RPC requests and HTTP round trips
per day, anvil's limit for the same requests and the ratio, the chain-vs-fast difference of the final value, and
peak memory of this process and of anvil.

anvil's limit: every HTTP request body the replay sent (batches as they were), recorded, then sent again as raw
bytes over one kept-alive connection, in order, to the same chain reverted to where the replay started: what
anvil alone needs for the same day's transactions and reads, with no client work (no strategy, no web3, no
encoding). The raw replay must end on the same block with the same vault value and nothing left in the
transaction pool, or the benchmark says so.

Each of `--repeat` rounds runs the replay in fast mode, on chain, then raw; the round of the median ratio (chain mode
/ anvil's limit) is printed, with every round's figures. Fast mode's time is the strategy's own work (forecasts, the
allocator), which chain mode does too: chain mode beyond it is what the chain costs, also shown against the limit.

    python -m benchmarks.backtest_chain [--pools 8] [--days 90] [--warmup-days 30]
                                        [--strategy trailing-best] [--rebalance-every 1] [--seed 7]
                                        [--slippage-bps 1.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pandas as pd
from web3 import Web3

from backtest.chainmode import ChainWorld
from backtest.engine import StrategyRun, replay
from backtest.market import synthetic_market
from backtest.run import RunConfig, build_setup, make_forecaster
from benchmarks.memory import peak_rss_mib

START = pd.Timestamp("2024-01-01", tz="UTC")


class Recorder:
    """Every HTTP request body the Web3 `w3` posts, until `stop`."""

    def __init__(self, w3: Web3) -> None:
        self.bodies: list[bytes] = []
        session = w3.provider._request_session_manager  # the one seam web3's HTTPProvider posts through
        post = session.make_post_request

        def recording(endpoint_uri: str, data: bytes | str, **kwargs: Any) -> bytes:
            self.bodies.append(data if isinstance(data, bytes) else data.encode())
            return post(endpoint_uri, data, **kwargs)

        session.make_post_request = recording
        self._undo = lambda: delattr(session, "make_post_request")

    def stop(self) -> None:
        self._undo()

    def requests(self) -> int:
        """JSON-RPC calls recorded, each call of a batch counted."""
        return sum(len(body) if isinstance(body, list) else 1 for body in map(json.loads, self.bodies))


class Round(NamedTuple):
    fast_s: float
    chain_s: float
    limit_s: float
    posts: int
    requests: int
    same_end: bool


def raw_replay(url: str, bodies: list[bytes]) -> float:
    """Seconds to post `bodies` in order over one kept-alive connection, reading each answer in full; after a
    signed transaction (the keeper's, automined a moment after anvil takes it) its receipt is asked for until
    it is mined, as the replay's sender did, so that what follows sees the same chain."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(body: bytes) -> bytes:
        connection.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
        return connection.getresponse().read()

    started = time.perf_counter()
    for body in bodies:
        answer = post(body)
        if b'"eth_sendRawTransaction"' in body:
            poll = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionReceipt",
                               "params": [json.loads(answer)["result"]]}).encode()
            while json.loads(post(poll))["result"] is None:
                pass
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def measure(world: ChainWorld, strategy: str, config: RunConfig) -> tuple[StrategyRun, StrategyRun, Round]:
    """One round: the replay in fast mode; on chain, on a fresh deployment, recorded; then its raw replay from the
    same start."""
    setup, contracts = world.setup, world.contracts
    started = time.perf_counter()
    fast = replay(setup, make_forecaster(strategy, setup, config))
    fast_s = time.perf_counter() - started
    vault = world.vault(strategy)
    start = contracts.rpc("evm_snapshot")
    recorder = Recorder(contracts.w3)
    started = time.perf_counter()
    chain = replay(setup, make_forecaster(strategy, setup, config), vault=vault)
    chain_s = time.perf_counter() - started
    recorder.stop()
    end = (contracts.w3.eth.block_number, contracts.reader.total_assets())
    contracts.rpc("evm_revert", start)
    limit_s = raw_replay(world.anvil.rpc_url, recorder.bodies)
    same_end = ((contracts.w3.eth.block_number, contracts.reader.total_assets()) == end
                and contracts.rpc("txpool_status") == {"pending": "0x0", "queued": "0x0"})
    contracts.rpc("anvil_dropAllTransactions")  # evm_revert keeps the pool: a diverged raw replay leaves no trace
    return fast, chain, Round(fast_s, chain_s, limit_s, len(recorder.bodies), recorder.requests(), same_end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=8)
    parser.add_argument("--days", type=int, default=90, help="length of the backtest window")
    parser.add_argument("--warmup-days", type=int, default=30, help="history before the window")
    parser.add_argument("--strategy", choices=("equal", "trailing-best", "hold"), default="trailing-best")
    parser.add_argument("--rebalance-every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--slippage-bps", type=float, default=1.0,
                        help="charged by both modes (on chain as the markets' deposit fee)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of fast, chain and raw replay; the round of the median ratio is shown")
    args = parser.parse_args()

    end = START + pd.Timedelta(days=args.days - 1)
    market = synthetic_market(args.pools, START, end, args.warmup_days, args.seed)
    config = RunConfig.load(None, args.seed)
    costs = config.strategy.costs.model_copy(update={"slippage_bps": args.slippage_bps})
    config = RunConfig(config.strategy.model_copy(update={"costs": costs}), config.backtest, config.source)
    setup = build_setup(market, START, end, config, 1_000_000.0, args.rebalance_every)

    started = time.perf_counter()
    with ChainWorld(setup) as world:
        deploy_seconds = time.perf_counter() - started
        rounds = []
        for _ in range(max(1, args.repeat)):
            fast, chain, measured = measure(world, args.strategy, config)
            rounds.append(measured)
        anvil_mib = peak_rss_mib(world.anvil.pid)

    steps = len(setup.days)
    median = sorted(rounds, key=lambda r: r.limit_s / r.chain_s)[len(rounds) // 2]
    accepted = sum(d.accepted for d in chain.decisions)
    difference_bp = abs(chain.values["total"].iloc[-1] / fast.values["total"].iloc[-1] - 1) * 1e4

    def per_day(seconds: float) -> str:
        return f"{steps / seconds:.1f} steps/s ({seconds / steps * 1000:.1f} ms/day)"

    print(f"market: {args.pools} pools, {steps} days, strategy {args.strategy}, rebalance every "
          f"{args.rebalance_every} day(s), {len(setup.pools)} markets on chain; {accepted} rebalances sent, "
          f"{sum(bool(d.rejections) for d in chain.decisions)} rejected by the contract")
    print(f"anvil start + deployment: {deploy_seconds:.1f} s; {len(rounds)} rounds, the round of the median ratio:")
    print(f"chain mode: {median.chain_s:.2f} s = {per_day(median.chain_s)}; rounds: "
          f"{', '.join(f'{steps / r.chain_s:.1f}' for r in rounds)} steps/s")
    print(f"JSON-RPC: {median.requests / steps:.1f} requests/day in {median.posts / steps:.1f} HTTP round trips/day")
    print(f"anvil's limit (the same {median.posts} bodies raw): {median.limit_s:.2f} s = {per_day(median.limit_s)}"
          f"{'' if all(r.same_end for r in rounds) else '; WARNING: a raw replay did not end where the replay did'}")
    print(f"chain mode / anvil's limit: {median.limit_s / median.chain_s:.2f}; rounds: "
          f"{', '.join(f'{r.limit_s / r.chain_s:.2f}' for r in rounds)}")
    print(f"fast mode (the strategy's own work, which chain mode does too): {median.fast_s:.2f} s = "
          f"{per_day(median.fast_s)}")
    beyond = median.chain_s - median.fast_s
    print(f"chain mode beyond fast mode: {beyond / steps * 1000:.1f} ms/day = {beyond / median.limit_s:.1f}× "
          f"anvil's limit")
    print(f"final value, chain vs fast (gross of gas): {difference_bp:.2e} bp; slippage paid "
          f"{-chain.pnl['slippage']:,.2f} on chain, {-fast.pnl['slippage']:,.2f} in fast mode "
          f"({args.slippage_bps:g} bps)")
    print(f"peak memory: {peak_rss_mib():.0f} MiB (this process), {anvil_mib:.0f} MiB (anvil)")


if __name__ == "__main__":
    main()
