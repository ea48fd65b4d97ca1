"""Units and facts shared with the contracts, written once for the keeper, the backtester and the depositor tools.

The Vyper side states the same numbers (`contracts/Vault.vy`: BPS, MAX_MARKETS; the PARAM_* ids in
`chain.params`); `tests/test_units.py` checks them against the compiled contract.
"""

import math

BPS = 10_000  # basis points in one: the contract's BPS
WAD = 10**18  # fixed-point one of MockMarket rates (1e18 = 100 % per second)
UINT256_MAX = 2**256 - 1
GWEI = 10**9  # wei per gwei, the unit gas prices are quoted in
WEI_PER_NATIVE = 10**18  # wei per ETH (or any chain's gas token)
SECONDS_PER_DAY = 24 * 3600
DAYS_PER_YEAR = 365
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY


def annualised_growth(value_before: float, value_after: float, seconds: float) -> float | None:
    """The growth from `value_before` to `value_after` over `seconds`, compounded to a year, as a fraction
    (0.05 = 5 %); None when it cannot be told (no time passed, or a value that is not positive). The realised
    APY of a share price, on the keeper's metrics and the depositors' page alike."""
    if seconds <= 0 or value_before <= 0 or value_after <= 0:
        return None
    return math.expm1(math.log(value_after / value_before) * SECONDS_PER_YEAR / seconds)
