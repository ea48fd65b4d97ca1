"""Units and facts shared with the contracts, written once for the keeper, the backtester and the depositor tools.

The Vyper side states the same numbers (`contracts/Vault.vy`: BPS, MAX_MARKETS; the PARAM_* ids in
`chain.params`); `tests/test_units.py` checks them against the compiled contract.
"""

import math
from contextlib import AbstractContextManager
from decimal import ROUND_DOWN, Context, Decimal, localcontext

BPS = 10_000  # basis points in one: the contract's BPS
WAD = 10**18  # fixed-point one of MockMarket rates (1e18 = 100 % per second)
UINT256_MAX = 2**256 - 1
UINT256_DIGITS = len(str(UINT256_MAX))  # 78: no token amount has more digits in base units
MAX_AMOUNT_CHARS = 120  # an amount as text: the largest, grouped with commas and a fraction, is shorter
DISPLAY_PLACES = 6  # more decimals than this only add noise on screen; exact values stay in base units
GWEI = 10**9  # wei per gwei, the unit gas prices are quoted in
WEI_PER_NATIVE = 10**18  # wei per ETH (or any chain's gas token)
SECONDS_PER_DAY = 24 * 3600
DAYS_PER_YEAR = 365
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY
# The longest window in days a setting or flag may name: a century, past any history, short of pandas' 292-year
# Timedelta (99,999,999,999 days overflowed deep in training).
MAX_WINDOW_DAYS = 100 * DAYS_PER_YEAR


def annualised_growth(value_before: float, value_after: float, seconds: float) -> float | None:
    """The growth from `value_before` to `value_after` over `seconds`, compounded to a year, as a fraction
    (0.05 = 5 %); None when it cannot be told (no time passed, or a value that is not positive). The realised
    APY of a share price, on the keeper's metrics and the depositors' page alike."""
    if seconds <= 0 or value_before <= 0 or value_after <= 0:
        return None
    return math.expm1(math.log(value_after / value_before) * SECONDS_PER_YEAR / seconds)


def exact_decimals() -> AbstractContextManager[Context]:
    """A decimal context in which every step on an amount (uint256 base units, or text of at most
    MAX_AMOUNT_CHARS) is exact: Decimal's default precision (28 digits) would round uint256 amounts. A fresh
    context manager per use: the web server is threaded."""
    return localcontext(prec=MAX_AMOUNT_CHARS + UINT256_DIGITS)


def format_units(value: int, decimals: int, symbol: str = "", *, places: int = DISPLAY_PLACES) -> str:
    """1000500000 with 6 decimals -> '1,000.50 USDC': grouped, at least 2 and at most `places` decimals,
    rounded toward zero so a shown amount is never more than the real one. The one way every screen (the
    depositor's commands and page, `keeper status`, `keeper verify`) shows an amount."""
    step = Decimal(1).scaleb(-min(places, decimals))
    with exact_decimals():
        shown = Decimal(value).scaleb(-decimals).quantize(step, rounding=ROUND_DOWN)
    text = f"{shown:,f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(min(2, decimals), "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return f"{text} {symbol}".rstrip()
