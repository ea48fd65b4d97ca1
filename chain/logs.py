"""An event's logs over a block range, asked the way real RPC providers serve eth_getLogs: in ranges of at most
`LOG_RANGE_BLOCKS`, and a range a node refuses asked again halved, down to one block.

Providers refuse big queries with a JSON-RPC error whose code and message vary (Infura: -32005 "query returned
more than 10000 results"; Alchemy: "Log response size exceeded"; others "block range too large"): any error answer
to a range of more than one block reads as "too large". It is an error answer, not a failure of the URL, so
`chain.rpc.FailoverProvider` hands it back as web3's Web3RPCError instead of moving to the next URL.
"""

from web3.contract.contract import ContractEvent
from web3.exceptions import Web3RPCError
from web3.types import EventData

from chain.errors import RpcUnavailable

# The widest range commonly served: QuickNode, Chainstack and many public nodes cap eth_getLogs at 10,000 blocks,
# and Infura's 10,000-log cap is far more than the vault emits in as many blocks. Over a mainnet day (7,200
# blocks, more than a proposal lives), so the keeper's read of live proposals is one request. A node with a
# tighter cap (Alchemy's 2,000 blocks, public nodes' 1,000) costs a few refused requests a read: the size that
# worked is kept for the rest of the read.
LOG_RANGE_BLOCKS = 10_000


def event_logs(event: ContractEvent, first: int, last: int) -> list[EventData]:
    """Every `event` log in blocks `first` to `last` (both included), as one eth_getLogs over the whole range
    would answer them, in order. RpcUnavailable when a node refuses a single block."""
    logs: list[EventData] = []
    size, start = LOG_RANGE_BLOCKS, first
    while start <= last:
        end = min(last, start + size - 1)
        try:
            logs += event.get_logs(from_block=start, to_block=end)
        except Web3RPCError as error:
            if end == start:
                raise RpcUnavailable(f"the RPC refused eth_getLogs of {event.event_name} in block {start}: "
                                     f"{error}") from error
            size = (end - start + 1) // 2
            continue
        start = end + 1
    return logs
