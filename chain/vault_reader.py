"""Reads the Vault contract (contracts/Vault.vy) for the keeper and the depositor tools.

`snapshot()` is everything a dashboard shows, read at one block; `guardrails()` and `state()` are the
on-chain rebalance parameters and positions as `strategy.guardrails` models them (markets keyed by checksum
address), so the keeper's Python mirror checks exactly what the contract will check. ABIs come from a devnet
deployment, a directory of `<Contract>.json` files (chain.artifacts.write_abis), or are compiled
from this repo's contracts when neither is given.

`guardrails_and_state()` (and `guardrails()`, `state()`) is one JSON-RPC batch of eth_calls pinned to one block
(`read_batch`), encoded by `AbiCodec`: a node that refuses batches is asked one call at a time.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_typing import ABIFunction, ChecksumAddress
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3RPCError
from web3.types import BlockIdentifier, RPCEndpoint, RPCResponse

from chain.deployment import Deployment
from chain.logs import event_logs
from chain.rpc import batching_provider
from strategy.guardrails import Guardrails, MarketLimits, VaultState
from strategy.safe_json import loads
from strategy.units import BPS

# The vault keeps its daily budgets as fractions of totalAssets scaled by this (Vault.vy FRACTION).
FRACTION = 10**18

AbiSource = Path | Deployment | None

# What a decision reads of the vault besides its idle balance: per vault, then per listed market.
_STATE_VIEWS = ("last_rebalance", "paused")
_GUARDRAIL_VIEWS = ("budgets", "totalAssets", "min_rebalance_interval", "max_turnover_bps", "max_loss_bps",
                    "min_idle_bps")


@dataclass(frozen=True)
class MarketSnapshot:
    address: str
    name: str
    position: int  # assets the vault would get back now
    cap_bps: int
    cap_abs: int
    rate: int | None  # MockMarket's per-second rate (1e18 = 100 %/s); None for a market without one


@dataclass(frozen=True)
class VaultSnapshot:
    """The vault at one block; amounts in asset base units, `price_per_share` per 10**decimals shares."""

    block: int
    address: str
    name: str
    symbol: str
    decimals: int
    asset: str
    asset_decimals: int
    total_assets: int
    total_supply: int
    idle: int
    price_per_share: int
    paused: bool
    admin: str
    keeper: str
    guardian: str
    fee_recipient: str
    deposit_limit: int
    fee_bps: int
    timelock: int
    last_rebalance: int
    high_water_mark: int
    markets: tuple[MarketSnapshot, ...]
    daily_loss_bps: int
    daily_turnover_bps: int
    loss_budget_left_bps: float  # what is left of each rolling daily budget now, in bps of totalAssets
    turnover_budget_left_bps: float
    max_price_growth_bps: int  # a year
    last_report: int
    proposals: tuple["Proposal", ...]  # rebalances waiting for the guardian, or approved and not yet run


@dataclass(frozen=True)
class RebalanceEvent:
    """One `Rebalanced` log."""

    block: int
    time: int
    tx_hash: str
    log_index: int
    keeper: str
    decision_hash: str  # 0x-hex
    total_before: int
    total_after: int
    idle_after: int
    moved: int


@dataclass(frozen=True)
class Proposal:
    """A rebalance the keeper proposed beyond the daily budgets (`RebalanceProposed`), still live."""

    id: str  # 0x-hex, what the guardian approves
    decision_hash: str
    deadline: int
    approved: bool
    allocations: tuple[tuple[str, int], ...]  # (market, target assets)


# What AbiCodec keeps encoded: every view of a vault and its markets, with room for a day's set-up calls.
_ENCODED_CALLS = 4096
_PLAIN = (int, str, bytes)  # hashable; the cache is typed, so True and 1 stay apart


class _Function(NamedTuple):
    selector: bytes
    inputs: list[str]
    outputs: list[str]


class AbiCodec:
    """Calldata and return values of one contract's functions, each function's selector and types found once:
    web3's `encode_abi` and `functions.f(...).call()` search and validate the whole ABI on every call (about
    1.5 ms each for the Vault's). Addresses come back in lower case; a single output comes back unwrapped."""

    def __init__(self, abi: list[dict]) -> None:
        functions = [cast(ABIFunction, entry) for entry in abi if entry["type"] == "function"]
        self._functions = {entry["name"]: _Function(function_abi_to_4byte_selector(entry), get_abi_input_types(entry),
                                                    get_abi_output_types(entry))
                           for entry in functions}
        self._encoded = lru_cache(maxsize=_ENCODED_CALLS, typed=True)(self._encode)

    def encode(self, function: str, *args: Any) -> str:
        """0x-hex calldata of `function(*args)`. Calls of plain arguments are encoded once: a keeper or a replay
        reads the same views of the same addresses every cycle, and eth_abi checks each address's checksum."""
        if all(isinstance(arg, _PLAIN) for arg in args):
            return self._encoded(function, *args)
        return self._encode(function, *args)

    def _encode(self, function: str, *args: Any) -> str:
        selector, inputs, _ = self._functions[function]
        return HexBytes(selector + encode(inputs, args)).to_0x_hex()

    def decode(self, function: str, data: str) -> Any:
        outputs = self._functions[function].outputs
        try:
            values = decode(outputs, HexBytes(data))
        except DecodingError as error:
            raise BadFunctionCallOutput(f"could not decode what {function} returned ({data[:80]!r})") from error
        return values[0] if len(values) == 1 else values


@lru_cache(maxsize=4096)
def checksummed(address: str) -> ChecksumAddress:
    """`Web3.to_checksum_address`, remembered: a vault's markets come back in every state read, and the
    checksum (a keccak of the address) was about 5 % of a chain-mode replay's client time."""
    return Web3.to_checksum_address(address)


class ViewCall(NamedTuple):
    """One eth_call of a batch: `function(*args)` of the contract at `to`, whose ABI `codec` knows."""

    to: str
    codec: AbiCodec
    function: str
    args: tuple[Any, ...] = ()
    refusable: bool = False  # an error answer reads as None (a market's view it may refuse), not an exception

    def params(self, *at: Any) -> list[Any]:
        """eth_call's params for this call `at` a block (a number or tag, then any overrides)."""
        return [{"to": self.to, "data": self.codec.encode(self.function, *self.args)}, *at]


class BatchedState(NamedTuple):
    """`VaultReader.state` as reads a caller sends in its own JSON-RPC batch (chain mode, with the block it mines),
    and what their answers, read at `block`, make."""

    calls: list[ViewCall]
    state: Callable[[list[Any], int], VaultState]  # (answers, block) -> the state


def read_batch(w3: Web3, calls: Sequence[ViewCall], block: int) -> list[Any]:
    """`calls` at `block` in one JSON-RPC batch, decoded in order; a node that refuses batches (it answers one
    error object) is asked one call at a time. An error answer raises Web3RPCError naming the call, or reads as
    None for a `refusable` call."""
    if not calls:
        return []
    requests = [(RPCEndpoint("eth_call"), call.params(hex(block))) for call in calls]
    provider = batching_provider(w3)
    replies = provider.make_batch_request(requests)
    if not isinstance(replies, list):
        replies = [provider.make_request(method, params) for method, params in requests]
    if len(replies) != len(calls):
        raise Web3RPCError(f"a batch of {len(calls)} eth_calls got {len(replies)} answers")
    return decoded(calls, replies)


def decoded(calls: Sequence[ViewCall], replies: Sequence[RPCResponse]) -> list[Any]:
    """The answers to `calls`, in order, as `read_batch` reads them (for a caller that sent them itself)."""
    return [None if call.refusable and "error" in reply else call.codec.decode(call.function, _result(call, reply))
            for call, reply in zip(calls, replies, strict=True)]


def _result(call: ViewCall, reply: RPCResponse) -> str:
    if "error" in reply:
        raise Web3RPCError(f"eth_call {call.function} at {call.to} failed: {reply['error']}", reply)
    return reply["result"]


def load_abis(source: AbiSource) -> dict[str, list[dict]]:
    """Vault, MockToken (the asset's ERC-20 surface) and MockMarket ABIs from `source`."""
    names = ("Vault", "MockToken", "MockMarket")
    if source is None:
        from chain.artifacts import compile_contracts

        compiled = compile_contracts()
        return {name: compiled[name].abi for name in names}
    directory = Path(source.abi_dir) if isinstance(source, Deployment) else source
    abis = {}
    for name in names:
        path = directory / f"{name}.json"
        try:
            abis[name] = loads(path.read_text())
        except (OSError, ValueError) as error:
            raise FileNotFoundError(f"cannot read the {name} ABI {path}: {error}") from error
    return abis


class VaultReader:
    """Read-only view of the vault at `address`."""

    def __init__(self, w3: Web3, address: str, abi_source: AbiSource = None) -> None:
        self.w3 = w3
        abis = load_abis(abi_source)
        self.contract: Contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abis["Vault"])
        self.asset_abi: list[dict] = abis["MockToken"]
        self.market_abi: list[dict] = abis["MockMarket"]
        self.vault_codec, self.asset_codec = AbiCodec(abis["Vault"]), AbiCodec(abis["MockToken"])
        self.market_codec = AbiCodec(abis["MockMarket"])  # the ERC-4626 views every market has
        self._market_names: dict[str, str] = {}
        self._listed_guess: list[str] = []  # the markets of the last batched read: its positions are asked with it

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    def _call(self, name: str, *args: Any, block: BlockIdentifier = "latest") -> Any:
        return getattr(self.contract.functions, name)(*args).call(block_identifier=block)

    # -- immutable facts (read once) ----------------------------------------------------------------

    @cached_property
    def _static(self) -> tuple[str, str, int, ChecksumAddress, int]:
        asset = Web3.to_checksum_address(self._call("asset"))
        token = self.w3.eth.contract(address=asset, abi=self.asset_abi)
        return (self._call("name"), self._call("symbol"), self._call("decimals"), asset,
                token.functions.decimals().call())

    @property
    def asset(self) -> Contract:
        return self.w3.eth.contract(address=self._static[3], abi=self.asset_abi)

    def deployed_block(self) -> int:
        """The first block holding the vault's code (binary search over eth_getCode)."""
        return self._deployed_block

    @cached_property
    def _deployed_block(self) -> int:
        latest = self.w3.eth.block_number
        if not self.w3.eth.get_code(self.address, latest):
            raise ValueError(f"no contract at {self.address} on chain {self.w3.eth.chain_id}")
        return _first_block(0, latest, lambda block: bool(self.w3.eth.get_code(self.address, block)))

    @cached_property
    def _proposal_ttl(self) -> int:
        return self._call("PROPOSAL_TTL")

    # -- the whole vault ----------------------------------------------------------------------------

    def snapshot(self, block: BlockIdentifier = "latest") -> VaultSnapshot:
        number = self._block_number(block)
        name, symbol, decimals, asset, asset_decimals = self._static

        def call(fn: str, *args: Any) -> Any:
            return self._call(fn, *args, block=number)

        idle = self.asset.functions.balanceOf(self.address).call(block_identifier=number)
        markets = tuple(self._market(m, number) for m in self._listed(number))
        loss_left, turnover_left = call("budgets")
        return VaultSnapshot(
            block=number, address=self.address, name=name, symbol=symbol, decimals=decimals, asset=asset,
            asset_decimals=asset_decimals, total_assets=call("totalAssets"), total_supply=call("totalSupply"),
            idle=idle, price_per_share=call("convertToAssets", 10**decimals), paused=call("paused"),
            admin=call("admin"), keeper=call("keeper"), guardian=call("guardian"),
            fee_recipient=call("fee_recipient"), deposit_limit=call("deposit_limit"),
            fee_bps=call("performance_fee_bps"), timelock=call("timelock"), last_rebalance=call("last_rebalance"),
            high_water_mark=call("high_water_mark"), markets=markets,
            daily_loss_bps=call("daily_loss_bps"), daily_turnover_bps=call("daily_turnover_bps"),
            loss_budget_left_bps=loss_left * BPS / FRACTION, turnover_budget_left_bps=turnover_left * BPS / FRACTION,
            max_price_growth_bps=call("max_price_growth_bps"), last_report=call("last_report"),
            proposals=tuple(self.proposals(number)),
        )

    def guardrails_and_state(self, block: BlockIdentifier = "latest") -> tuple[Guardrails, VaultState]:
        """`guardrails` and `state` at one block, in one batch: what a decision plans with."""
        vault, markets = self._read(self._block_number(block), _STATE_VIEWS + _GUARDRAIL_VIEWS,
                                    ("position", "market_config"), withdrawable=True)
        state = _state_of(vault, markets)
        return _guardrails_of(vault, markets, state), state

    def guardrails(self, block: BlockIdentifier = "latest", *, state: VaultState | None = None) -> Guardrails:
        """The rebalance parameters and every listed market's caps, keyed by checksum address.

        The daily budgets appear as the per-rebalance limits they leave now: a rebalance may move what is
        left of the turnover budget and lose what is left of the loss budget once the report that starts it
        has spent its share (a market reported lower than its stored value). The budgets only refill
        between this read and the transaction, so the limits are safe to plan with. `state`, when given, is
        the vault's state at the same block (it saves reading every position again).
        """
        if state is None:
            return self.guardrails_and_state(block)[0]
        vault, markets = self._read(self._block_number(block), _GUARDRAIL_VIEWS, ("market_config",))
        return _guardrails_of(vault, markets, state)

    def proposals(self, block: BlockIdentifier = "latest") -> list[Proposal]:
        """Proposed rebalances still live at `block` (not run, rejected or past their deadline), oldest first. Only
        the logs of the last PROPOSAL_TTL seconds are read: an older proposal is past its deadline."""
        number = self._block_number(block)
        now = self.w3.eth.get_block(number)["timestamp"]
        logs = event_logs(self.contract.events.RebalanceProposed(), self.proposals_since(now, number), number)
        live = {}
        for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            deadline, approved = self._call("proposals", log["args"]["id"], block=number)
            if deadline >= now:
                args = log["args"]
                live[args["id"]] = Proposal(
                    id=HexBytes(args["id"]).to_0x_hex(), decision_hash=HexBytes(args["decision_hash"]).to_0x_hex(),
                    deadline=deadline, approved=approved,
                    allocations=tuple((Web3.to_checksum_address(a["market"]), a["assets"])
                                      for a in args["allocations"]))
        return list(live.values())

    def proposals_since(self, live_at: int, number: int) -> int:
        """The first block that can hold the proposal of a rebalance live at time `live_at`, or that rebalance: one
        lives PROPOSAL_TTL seconds from its block's time (Vault.vy `propose_rebalance`, which a proposal of the
        same id again restarts), and block times never decrease."""
        return self.first_block_at(live_at - self._proposal_ttl, number)

    def first_block_at(self, timestamp: int, number: int) -> int:
        """The first block of 0 ... `number` whose time is `timestamp` or later (`number` when none before it is),
        by binary search on block headers, which every node keeps (old state, as `deployed_block` reads, only
        archive nodes do)."""
        return _first_block(0, number, lambda block: self.w3.eth.get_block(block)["timestamp"] >= timestamp)

    def state(self, block: BlockIdentifier = "latest") -> VaultState:
        """Idle, every listed market's position and what it can pay back, the last rebalance time and the pause
        flag, at one block."""
        return _state_of(*self._read(self._block_number(block), _STATE_VIEWS, ("position",), withdrawable=True))

    def batched_state(self) -> BatchedState:
        """`state`'s reads for the caller's own batch: the markets of the last read are asked for, and the listed
        markets of `block` read again if they are others."""
        calls, result = self._batch(_STATE_VIEWS, ("position",), withdrawable=True)
        return BatchedState(calls, lambda answers, block: _state_of(*result(answers, block)))

    def _read(self, block: int, views: Sequence[str], market_views: Sequence[str],
              withdrawable: bool = False) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The vault's idle balance and `views`, and `market_views` of every market it lists (with `withdrawable`,
        also the market's own `maxWithdraw` for the vault), at `block`: one batch that asks for the markets of the
        last read with the list itself, and a second one when `block` lists others. Returns {view: value} (with
        "idle") and {market: {view: value}}."""
        calls, result = self._batch(views, market_views, withdrawable)
        return result(read_batch(self.w3, calls, block), block)

    def _batch(self, views: Sequence[str], market_views: Sequence[str], withdrawable: bool) -> tuple[
            list[ViewCall], Callable[[list[Any], int], tuple[dict[str, Any], dict[str, dict[str, Any]]]]]:
        """`_read` as its first batch's calls and what their answers at a block make."""
        head = [ViewCall(self._static[3], self.asset_codec, "balanceOf", (self.address,)),
                ViewCall(self.address, self.vault_codec, "markets"),
                *(ViewCall(self.address, self.vault_codec, view) for view in views)]

        names = [*market_views, *(["maxWithdraw"] if withdrawable else [])]

        def per_market(markets: list[str]) -> list[ViewCall]:
            calls = []
            for market in markets:
                calls += [ViewCall(self.address, self.vault_codec, view, (market,)) for view in market_views]
                if withdrawable:  # a market that refuses it pays nothing, as the vault itself counts it
                    calls.append(ViewCall(market, self.market_codec, "maxWithdraw", (self.address,), refusable=True))
            return calls

        guess = list(self._listed_guess)

        def result(values: list[Any], block: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
            idle, listed, *rest = values[:len(head)]
            listed = [checksummed(market) for market in listed]
            answers = values[len(head):]
            if listed != guess:
                self._listed_guess = listed
                answers = read_batch(self.w3, per_market(listed), block)
            width = len(names)
            return ({"idle": idle, **dict(zip(views, rest, strict=True))},
                    {market: dict(zip(names, answers[i * width:(i + 1) * width], strict=True))
                     for i, market in enumerate(listed)})

        return head + per_market(guess), result

    def rebalance_events(self, from_block: int = 0, to_block: BlockIdentifier = "latest") -> list[RebalanceEvent]:
        """Every `Rebalanced` from `from_block` (from the vault's deployment when 0), oldest first."""
        # Only from 0 is the deployment looked for: `deployed_block` reads old state, which only archive nodes keep
        first, last = from_block or self.deployed_block(), self._block_number(to_block)
        if first > last:
            return []  # nodes refuse a range that starts after its end
        logs = event_logs(self.contract.events.Rebalanced(), first, last)
        times = {n: self.w3.eth.get_block(n)["timestamp"] for n in {log["blockNumber"] for log in logs}}
        return [RebalanceEvent(
            block=log["blockNumber"], time=times[log["blockNumber"]], tx_hash=log["transactionHash"].to_0x_hex(),
            log_index=log["logIndex"], keeper=log["args"]["keeper"],
            decision_hash=HexBytes(log["args"]["decision_hash"]).to_0x_hex(), total_before=log["args"]["total_before"],
            total_after=log["args"]["total_after"], idle_after=log["args"]["idle_after"], moved=log["args"]["moved"],
        ) for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))]

    # -- single values ------------------------------------------------------------------------------

    def balance(self, account: str, block: BlockIdentifier = "latest") -> int:
        """Vault shares held by `account`."""
        return self._call("balanceOf", Web3.to_checksum_address(account), block=block)

    def total_assets(self, block: BlockIdentifier = "latest") -> int:
        return self._call("totalAssets", block=block)

    def paused(self, block: BlockIdentifier = "latest") -> bool:
        return self._call("paused", block=block)

    def last_report(self, block: BlockIdentifier = "latest") -> int:
        """When every market was last valued (a report or a rebalance), chain time."""
        return self._call("last_report", block=block)

    def deposit_limit(self, block: BlockIdentifier = "latest") -> int:
        return self._call("deposit_limit", block=block)

    def price_per_share(self, block: BlockIdentifier = "latest") -> int:
        """Assets per 10**decimals shares."""
        return self._call("convertToAssets", 10**self._static[2], block=block)

    def preview_deposit(self, assets: int) -> int:
        return self._call("previewDeposit", assets)

    def preview_mint(self, shares: int) -> int:
        return self._call("previewMint", shares)

    def preview_withdraw(self, assets: int) -> int:
        return self._call("previewWithdraw", assets)

    def preview_redeem(self, shares: int) -> int:
        return self._call("previewRedeem", shares)

    def max_deposit(self, account: str) -> int:
        return self._call("maxDeposit", Web3.to_checksum_address(account))

    def max_mint(self, account: str) -> int:
        return self._call("maxMint", Web3.to_checksum_address(account))

    def max_withdraw(self, account: str) -> int:
        return self._call("maxWithdraw", Web3.to_checksum_address(account))

    def max_redeem(self, account: str) -> int:
        return self._call("maxRedeem", Web3.to_checksum_address(account))

    # -- helpers ------------------------------------------------------------------------------------

    def _block_number(self, block: BlockIdentifier) -> int:
        # pin "latest" to a number so that every read of one snapshot sees the same state
        if isinstance(block, int):
            return block
        return self.w3.eth.block_number if block == "latest" else self.w3.eth.get_block(block)["number"]

    def _listed(self, block: int) -> list[ChecksumAddress]:
        return [checksummed(m) for m in self._call("markets", block=block)]

    def _market(self, address: ChecksumAddress, block: int) -> MarketSnapshot:
        _, cap_bps, cap_abs = self._call("market_config", address, block=block)
        market = self.w3.eth.contract(address=address, abi=self.market_abi)
        if address not in self._market_names:
            self._market_names[address] = _optional(market.functions.name(), block) or address
        return MarketSnapshot(address=address, name=self._market_names[address],
                              position=self._call("position", address, block=block), cap_bps=cap_bps,
                              cap_abs=cap_abs, rate=_optional(market.functions.rate_per_second(), block))


def _first_block(low: int, high: int, reached: Callable[[int], bool]) -> int:
    """The first block of `low`..`high` that has `reached` (which, once true, stays true), by binary search; `high`
    when none before it has."""
    while low < high:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _state_of(vault: dict[str, Any], markets: dict[str, dict[str, Any]]) -> VaultState:
    withdrawable = {market: views["maxWithdraw"] or 0 for market, views in markets.items()
                    if (views["maxWithdraw"] or 0) < views["position"]}
    return VaultState(idle=vault["idle"], positions={market: views["position"] for market, views in markets.items()},
                      last_rebalance=vault["last_rebalance"], paused=vault["paused"], withdrawable=withdrawable)


def _guardrails_of(vault: dict[str, Any], markets: dict[str, dict[str, Any]], state: VaultState) -> Guardrails:
    """`VaultReader.guardrails` from its views: the daily budgets folded into the per-rebalance limits."""
    loss_left, turnover_left = vault["budgets"]
    stored, reported = vault["totalAssets"], state.total
    report_fall = max(0, stored - reported)
    loss_room = max(0, loss_left * stored // FRACTION - report_fall)
    configs = {market: views["market_config"] for market, views in markets.items()}
    return Guardrails(
        min_rebalance_interval=vault["min_rebalance_interval"],
        max_turnover_bps=min(vault["max_turnover_bps"], _bps_of(turnover_left * stored // FRACTION, reported)),
        max_loss_bps=min(vault["max_loss_bps"], _bps_of(loss_room, reported)),
        min_idle_bps=vault["min_idle_bps"],
        markets={market: MarketLimits(cap_bps=cap_bps, cap_abs=cap_abs)
                 for market, (enabled, cap_bps, cap_abs) in configs.items() if enabled},
    )


def _bps_of(amount: int, total: int) -> int:
    """`amount` as whole basis points of `total`, rounded down, at most BPS (an empty vault has nothing to lose)."""
    return min(BPS, amount * BPS // total) if total > 0 else BPS


def _optional(function: Any, block: int) -> Any:
    """A view a market may not have (a real ERC-4626 has no `rate_per_second`): None when it is missing."""
    try:
        return function.call(block_identifier=block)
    except (ContractLogicError, BadFunctionCallOutput):
        return None
