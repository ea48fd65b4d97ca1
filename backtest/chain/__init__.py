"""Chain and fork mode: the replay of `backtest.engine` on the real contracts, on a local anvil.

`ChainWorld` starts anvil on 127.0.0.1 (fresh, or forked from an RPC at a block), deploys the backtest's
`Vault` with its guardrails and one `MockMarket` per pool (or lists markets already on the forked chain), and
hands each strategy a `ChainVault` on the same fresh deployment (an anvil snapshot). Each day `ChainVault`
moves chain time to the day, sets every market's rate so that its value grows by the day's realised factor
(`backtest.realised`), applies price moves and TVL-run losses exactly (`inject_loss`, then a top-up to the
base unit), and on decision days sends the rebalance through the keeper's own path: `keeper.decision` record
and hash, `keeper.cycle.rebalance_call`, `TxSender.simulate` then `TxSender.send`. A revert is a rejection
with the contract's reason.

Differences to fast mode, by design: markets have no slippage (deposits are lossless), so `slippage_bps`
only informs the allocator; gas is the receipt's `gasUsed` priced with `[backtest]` gas_price_gwei and
native_price (on chain the keeper pays it in ETH, so the vault's value per share is gross of gas); the
contract, not the Python mirror, decides rejections.
"""

from backtest.chain.vault import ChainVault
from backtest.chain.world import ChainOptions, ChainWorld

__all__ = ["ChainOptions", "ChainVault", "ChainWorld"]
