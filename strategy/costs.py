"""What a rebalance costs, written once for the keeper and the backtester: the `[strategy.costs]` table.

```toml
[strategy.costs]
gas_per_rebalance = 100000  # gas of one `Vault.rebalance` call ...
gas_per_market = 150000     # ... plus this per market it moves (benchmarks/gas.py measures both)
native_price = 3000.0       # the gas token's price in asset units (ETH in USD)
slippage_bps = 1.0          # share of every supplied amount lost in execution (price impact, deposit fees)
```

The allocator weighs a trade against these (`allocator_config`), at the chain's gas price live and at
`[backtest] gas_price_gwei` in a replay; the backtester also charges them, so the replay's costs are the
ones the strategy planned with.
"""

from dataclasses import replace
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from strategy.allocator import AllocatorConfig
from strategy.units import BPS, WEI_PER_NATIVE


class ExecutionCosts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gas_per_rebalance: Annotated[int, Field(ge=0)] = 100_000
    gas_per_market: Annotated[int, Field(ge=0)] = 150_000
    native_price: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] = 3000.0  # above: a typo
    slippage_bps: Annotated[float, Field(ge=0, le=BPS, allow_inf_nan=False)] = 1.0

    def rebalance_gas(self, markets_moved: int) -> int:
        """Gas of one rebalance call that moves `markets_moved` markets."""
        return self.gas_per_rebalance + self.gas_per_market * markets_moved

    def price_of_gas(self, gas: int, gas_price_wei: int, asset_decimals: int) -> int:
        """`gas` units at `gas_price_wei`, in asset base units."""
        return round(gas * gas_price_wei * self.native_price * 10**asset_decimals / WEI_PER_NATIVE)


def allocator_config(allocator: AllocatorConfig, costs: ExecutionCosts, gas_price_wei: int,
                     asset_decimals: int) -> AllocatorConfig:
    """`allocator` told the costs of trading now: the gas of a call moving one market, and the slippage."""
    gas_cost = costs.price_of_gas(costs.rebalance_gas(1), gas_price_wei, asset_decimals)
    return replace(allocator, gas_cost=float(gas_cost), slippage_bps=costs.slippage_bps)
