"""Backtester: replays market history through the strategy (and optionally the real contracts)."""
