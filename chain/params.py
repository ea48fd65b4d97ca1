"""The Vault's parameter ids (`Vault.vy` PARAM_* constants) as `set_param` / `propose_param` take them.

Written once here for Python; `tests/test_units.py` reads them back from the compiled contract.
"""

from enum import IntEnum


class Param(IntEnum):
    MIN_REBALANCE_INTERVAL = 0
    MAX_TURNOVER_BPS = 1
    MAX_LOSS_BPS = 2
    MIN_IDLE_BPS = 3
    DEPOSIT_LIMIT = 4
    PERFORMANCE_FEE_BPS = 5
    TIMELOCK = 6
    DAILY_LOSS_BPS = 7
    DAILY_TURNOVER_BPS = 8
    MAX_PRICE_GROWTH_BPS = 9
