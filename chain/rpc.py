"""A Web3 over several RPC URLs: the first that answers (on the right chain) serves, the next takes over when it fails.

Fail-over happens at `connect` and on every later request: a connection error, timeout or HTTP error moves
to the next URL in order (web3's own retries are off, so a dead URL costs one timeout, not a backoff
series). A URL is used only after it answered eth_chainId with the expected chain id, so a fail-over never
silently switches chains. When no URL answers, RpcUnavailable names every URL tried and why it failed.
URLs in messages and logs are redacted (`vaultbot.redact`): providers put API keys and passwords in them.

web3's validation (a transaction's declared chainId against the node's, a block's extraData) is kept, built
once per connection: stock web3 rebuilds it, asking eth_chainId, for the request and again for the answer of
every eth_call, eth_estimateGas and eth_sendTransaction, two of every three requests of a read. Whoever must
know the chain a node serves now asks it (`w3.eth.chain_id`, as `chain.tx.TxSender` does before signing).
"""

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import requests
import urllib3.exceptions
from eth_typing import URI
from web3 import HTTPProvider, Web3
from web3._utils.http_session_manager import HTTPSessionManager
from web3.middleware import FormattingMiddlewareBuilder
from web3.middleware.base import Middleware
from web3.middleware.validation import METHODS_TO_VALIDATE, async_build_method_validators, build_method_validators
from web3.providers import JSONBaseProvider
from web3.types import FormattersDict, RPCEndpoint, RPCResponse

from chain.errors import BadAnswer, RpcUnavailable, WrongChain
from strategy.safe_json import DensityLimit, loads
from vaultbot.redact import redact
from vaultbot.watchdog import BodyTooLarge, Watchdog, read_at_most, watched_session

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0  # a request to one URL, answer included
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a year of the vault's logs is a few MiB; a node sending more is lying
# Parsed, JSON takes memory by its values, not its bytes (`strategy.safe_json.DensityLimit`). Only eth_getLogs
# answers more than `DENSE_ANSWER_BYTES` (the vault's logs grow with its age; a block, a receipt or a batch of calls
# is some kilobytes), and each log the vault emits is 21 values (keys included) in some 800 bytes, so a bigger
# answer with more than a value per `MIN_BYTES_PER_VALUE` bytes is refused unparsed.
DENSE_ANSWER_BYTES = 4 * 1024 * 1024
MIN_BYTES_PER_VALUE = 32
_DENSITY = DensityLimit(DENSE_ANSWER_BYTES, MIN_BYTES_PER_VALUE)
# InvalidURL: a URL requests cannot parse (a port past 65535) fails as one that does not answer.
_FAILURES = (requests.ConnectionError, requests.Timeout, requests.HTTPError, requests.exceptions.InvalidURL)
# Requests whose result is a hex string, by its shape (QUANTITY: a digit at least, or DATA); web3 would take
# another shape (a number's "0xzz" or "0x", an object for return data) to a ValueError or TypeError deep in its
# formatters.
_HEX_RESULTS = {
    **dict.fromkeys(("eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_gasPrice", "eth_estimateGas",
                     "eth_getTransactionCount", "eth_maxPriorityFeePerGas"),
                    (re.compile(r"0x[0-9a-fA-F]+"), "a hex number")),
    **dict.fromkeys(("eth_call", "eth_getCode", "eth_getStorageAt", "eth_sendRawTransaction"),
                    (re.compile(r"0x[0-9a-fA-F]*"), "hex data")),  # "0x" is no data
}
T = TypeVar("T")


class FailoverProvider(HTTPProvider):
    """HTTPProvider that moves to the next URL (in the given order, wrapping around) when its current one fails."""

    def __init__(self, urls: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                 chain_id: int | None = None) -> None:
        if not urls:
            raise ValueError("connect needs at least one RPC URL")
        super().__init__(urls[0], request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None)
        self._request_session_manager = _BoundedPosts(explicit_session=watched_session())
        self.urls = [URI(url) for url in urls]
        self.chain_id = chain_id  # learnt from the first URL that answers when not given
        self._checked: set[str] = set()

    # web3's public request methods, each tried at every URL in turn; HTTPProvider posts to `endpoint_uri`.
    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return self._failing_over(str(method), lambda: _checked(
            method, super(FailoverProvider, self).make_request(method, params)))

    def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse] | RPCResponse:
        def batch() -> list[RPCResponse] | RPCResponse:
            answers = super(FailoverProvider, self).make_batch_request(requests)
            if isinstance(answers, list):  # in the requests' order: web3 sorts them by id
                for (method, _), answer in zip(requests, answers, strict=False):
                    _checked(method, answer)
            return answers

        return self._failing_over("a batch", batch)

    @staticmethod
    def decode_rpc_response(raw_response: bytes) -> RPCResponse:
        # An answer that is not JSON, or nests past any real one (web3's json.loads would overflow the C stack
        # and end the process), is a failure of that URL: the next one takes over.
        if (refusal := _DENSITY.refusal(raw_response)) is not None:
            raise BadAnswer(f"answered {refusal}")
        try:
            return cast(RPCResponse, loads(raw_response))
        except ValueError as error:
            raise BadAnswer(f"answered no JSON-RPC reply: {error}"[:200]) from None

    def _failing_over(self, what: str, request: Callable[[], T]) -> T:
        """`request` at the current URL, then at each next one (wrapping around) while they fail."""
        served_by, failures = self.endpoint_uri, []
        assert served_by is not None  # __init__ sets it to the first URL; only URLs of `urls` replace it
        current = self.urls.index(served_by)
        for url in self.urls[current:] + self.urls[:current]:
            self.endpoint_uri = url
            try:
                self._check_chain(url)
                answer = request()
            except (*_FAILURES, WrongChain, BadAnswer) as error:
                failures.append(f"{url} ({_short(error)})")
                continue
            if url != served_by:
                log.warning("RPC fail-over: %s now serves (%s)", redact(url), redact("; ".join(failures)))
            return answer
        self.endpoint_uri = served_by
        raise RpcUnavailable(redact(f"no RPC answered {what}: tried " + ", ".join(failures)), self.urls)

    def _check_chain(self, url: URI) -> None:
        """eth_chainId at `url` once, before it serves anything."""
        if url in self._checked:
            return
        body = self.encode_rpc_request(RPCEndpoint("eth_chainId"), [])
        raw = self._request_session_manager.make_post_request(url, body, **self.get_request_kwargs())
        answer: Any = self.decode_rpc_response(raw)
        try:
            served = int(answer["result"], 16)
        except (KeyError, TypeError, ValueError):
            raise WrongChain(f"eth_chainId answered {raw[:200]!r}") from None
        if self.chain_id is None:
            self.chain_id = served
        elif served != self.chain_id:
            raise WrongChain(f"serves chain {served}, expected {self.chain_id}")
        self._checked.add(url)


class _BoundedPosts(HTTPSessionManager):
    """web3's posts, each ended by its time-out as a whole (a `Watchdog`: requests' time-out bounds each read, which
    a node trickling its answer byte by byte resets, so one request could take hours and never fail over) and
    refused past `MAX_ANSWER_BYTES`."""

    def make_post_request(self, endpoint_uri: URI, data: bytes | dict[str, Any], **kwargs: Any) -> bytes:
        timeout = kwargs.get("timeout") or DEFAULT_TIMEOUT_S
        with Watchdog(timeout) as watchdog:
            try:
                with self.get_response_from_post_request(endpoint_uri, data=data, **kwargs, stream=True) as response:
                    response.raise_for_status()
                    body = read_at_most(response, MAX_ANSWER_BYTES)
            except BodyTooLarge as error:
                raise BadAnswer(f"answered {error}") from None
            except (OSError, urllib3.exceptions.HTTPError):  # requests' errors are OSErrors
                if watchdog.expired:
                    raise requests.Timeout(f"no whole answer within {timeout:g} s") from None
                raise
            if watchdog.expired:  # a body without a length ends at the shut socket as if it were whole
                raise requests.Timeout(f"no whole answer within {timeout:g} s")
        return body


def _checked(method: RPCEndpoint, answer: RPCResponse) -> RPCResponse:
    """`answer`, unless its result should be hex and is not (`BadAnswer`)."""
    result = answer.get("result") if isinstance(answer, dict) else None
    shape, noun = _HEX_RESULTS.get(method, (None, ""))
    if shape is not None and result is not None and not (isinstance(result, str) and shape.fullmatch(result)):
        raise BadAnswer(f"{method} answered {str(result)[:80]!r}, not {noun}")
    return answer


def connect(urls: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S, *, chain_id: int | None = None) -> Web3:
    """Web3 on the first of `urls` that answers (and serves `chain_id`, if given); RpcUnavailable if none does.

    `timeout_s` bounds each request to each URL.
    """
    provider = FailoverProvider(urls, timeout_s, chain_id)
    w3 = Web3(provider)
    # web3 annotates `replace`'s new element as a key (TKey) where it takes and stores a middleware (TValue)
    w3.middleware_onion.replace("validation", validation_built_once())  # type: ignore[arg-type]
    w3.eth.chain_id  # noqa: B018 - the probe: walks the URLs until one answers
    return w3


def batching_provider(w3: Web3) -> JSONBaseProvider:
    """`w3`'s provider, as one that sends JSON-RPC batches (HTTP, IPC); TypeError for any other."""
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise TypeError(f"JSON-RPC batches need an HTTP or IPC provider, not {type(provider).__name__}")
    return provider


def validation_built_once() -> Middleware:
    """web3's validation middleware whose formatters ask eth_chainId once, at the first request they check,
    instead of twice for every such request (see the module docstring)."""
    built: list[FormattersDict] = []

    def formatters(w3: Web3, method: RPCEndpoint) -> FormattersDict:
        if RPCEndpoint(method) not in METHODS_TO_VALIDATE:
            return build_method_validators(w3, method)  # asks nothing: only a block's extraData is checked
        if not built:
            built.append(build_method_validators(w3, method))
        return built[0]

    return FormattingMiddlewareBuilder.build(sync_formatters_builder=formatters,
                                             async_formatters_builder=async_build_method_validators)


def _short(error: Exception) -> str:
    # requests' messages embed whole urllib3 reprs; the exception type and the tail say enough
    text = str(error).split("Caused by ")[-1].strip("()")
    return f"{type(error).__name__}: {text[:160]}"
