"""Canonical market, pool and news tables: schema, validation with an explicit repair policy, loaders and
parsers for DeFiLlama payloads and RSS/Atom feeds, and the daily grid used by features and targets."""

from strategy.data.daily import DailyPanel, align_to_daily
from strategy.data.errors import DataError, Repair, RepairReport
from strategy.data.loaders import load_market_history, load_news, load_pools
from strategy.data.market import Validated, validate_market_history
from strategy.data.news import validate_news

__all__ = [
    "DailyPanel",
    "DataError",
    "Repair",
    "RepairReport",
    "Validated",
    "align_to_daily",
    "load_market_history",
    "load_news",
    "load_pools",
    "validate_market_history",
    "validate_news",
]
