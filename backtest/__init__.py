"""Point-in-time backtests of the allocation strategy and its baselines on daily market data.

A run replays the daily grid: at each rebalance a strategy turns the data known by then into per-pool
forecasts, `strategy.allocator.allocate` turns those into targets and the simulated vault executes them
under `strategy.guardrails`; between rebalances positions earn the realised yield and suffer the losses in
the data. `backtest.lookahead` checks that no decision depends on data from after it was taken.
"""
