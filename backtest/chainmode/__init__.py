"""Chain and fork mode: the replay of `backtest.engine` on the real contracts, on a local anvil.

`ChainWorld` starts anvil on 127.0.0.1 (fresh, or forked from an RPC at a block), deploys the backtest's
`Vault` with its guardrails and one `MockMarket` per pool (or, in fork mode, lists the markets already on the
forked chain that `ChainOptions.markets` names, `--fork-market POOL=0xADDRESS` on the command line), and
hands each strategy a `ChainVault` on the same fresh deployment (an anvil snapshot). Each day `ChainVault`
moves chain time to the day and, in one block (a few JSON-RPC batches), sets every market's rate so that its
value grows by the day's recorded yield (`backtest.realised`) and applies the dilution of it by the vault's own
position, price moves and incident losses exactly (`inject_loss`, then a top-up to the base unit); on decision
days it sends the rebalance through the keeper's own path: `strategy.decision_record` record and hash,
`chain.rebalance.simulate_then_send` (eth_call, then `TxSender.send`). A revert is a rejection with the
contract's reason.

Slippage is charged as in fast mode: every market `ChainWorld` deploys takes `[strategy.costs] slippage_bps` of each
supply as a deposit fee (`MockMarket.set_deposit_fee`, rounded up against the vault, sent out of the market to
its operator) and withdrawals arrive in full, so the vault's own loss guard sees it as fast mode's
`check_rebalance` does; a rebalance's slippage is the fees its receipt shows paid (`DepositFeePaid`). The fee
is exact to 1e-14 bps, so `slippage_bps` with more decimals is refused. Markets already on a fork keep their
own fee (none unless their operator set one), and `slippage_bps` then only informs the allocator.

Differences to fast mode, by design: gas is the receipt's `gasUsed` priced with `[backtest]` gas_price_gwei
and `[strategy.costs]` native_price (on chain the keeper pays it in ETH, so the vault's value per share is gross
of gas); the contract, not the Python mirror, decides rejections.
"""

from backtest.chainmode.chain_vault import ChainVault
from backtest.chainmode.world import ChainOptions, ChainWorld

__all__ = ["ChainOptions", "ChainVault", "ChainWorld"]
