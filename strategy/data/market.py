"""Validation of market history frames into the canonical schema (see `strategy.data.schema`).

Policy (``strict=False``, the default, repairs and records; ``strict=True`` raises on every deviation):

=====================================================  =========================  ==========================
problem                                                strict=False               strict=True
=====================================================  =========================  ==========================
missing required column, unparseable timestamp,        DataError                  DataError
non-numeric value, two different records for the
same (pool, timestamp)
apy missing but apy_base and apy_reward present        filled with their sum      DataError
apy_base / apy_reward missing, the other two present   filled from the identity   left missing (allowed)
required value missing (timestamp, pool, apy, tvl)     record dropped             DataError
value outside the plausible range                      record dropped             DataError
exact duplicate record                                 dropped                    DataError
timestamps going backwards within a pool               sorted                     DataError
=====================================================  =========================  ==========================

Every repair is logged and listed in the returned `RepairReport`; the result is always sorted by
(pool, timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd

from strategy.data.checks import RecordChecker
from strategy.data.errors import RepairReport
from strategy.data.schema import (
    APY_BOUNDS,
    APY_COLUMNS,
    MARKET_COLUMNS,
    MARKET_REQUIRED,
    POOL,
    PRICE_BOUNDS,
    TIMESTAMP,
    TVL_BOUNDS,
    UTILIZATION_BOUNDS,
)


class Validated(NamedTuple):
    """A canonical frame and the repairs made to get it (empty report: the input was clean)."""

    frame: pd.DataFrame
    report: RepairReport


def validate_market_history(
    frame: pd.DataFrame,
    *,
    where: str = "<frame>",
    strict: bool = False,
    row_labels: Sequence[str] | None = None,
) -> Validated:
    """Check ``frame`` (canonical column names, any value types) and return it in the canonical schema.

    ``row_labels`` name each input record in error messages (default ``row <i>``). Extra columns are dropped.
    """
    checker = RecordChecker(frame, where=where, strict=strict, row_labels=row_labels)
    check_market_records(checker)
    return Validated(checker.result(MARKET_COLUMNS), checker.report)


def check_market_records(checker: RecordChecker, *, stamped_by_source: bool = True) -> None:
    """Apply the market-history policy to the records held by ``checker`` (other columns are left alone); a
    history's own timestamps must be plausible (a snapshot's, `stamped_by_source` False, are the reader's)."""
    checker.require_columns(MARKET_REQUIRED)
    checker.parse_timestamps(TIMESTAMP)
    if stamped_by_source:
        checker.drop_implausible_times(TIMESTAMP)
    checker.clean_text(POOL)
    numeric = [c for c in MARKET_COLUMNS if c in checker.frame and c not in (TIMESTAMP, POOL)]
    for column in numeric:
        checker.parse_numbers(column)
    _complete_apy(checker)
    checker.drop_missing([TIMESTAMP, POOL, "apy", "tvl_usd"])
    for column in APY_COLUMNS:
        checker.drop_out_of_bounds(column, *APY_BOUNDS)
    checker.drop_out_of_bounds("tvl_usd", *TVL_BOUNDS)
    if "price" in checker.frame:
        checker.drop_out_of_bounds("price", *PRICE_BOUNDS, low_inclusive=False)
    if "utilization" in checker.frame:
        checker.drop_out_of_bounds("utilization", *UTILIZATION_BOUNDS)
    checker.drop_duplicates([POOL, TIMESTAMP], compare=[c for c in MARKET_COLUMNS if c in checker.frame])
    checker.sort_within(POOL, TIMESTAMP)


def _complete_apy(checker: RecordChecker) -> None:
    """Fill one missing part of apy = apy_base + apy_reward from the other two (exact, never a guess)."""
    frame = checker.frame
    if not frame[["apy", "apy_base", "apy_reward"]].isna().to_numpy().any():
        return  # nothing to fill
    derived = {
        "apy": frame["apy_base"] + frame["apy_reward"],
        "apy_base": frame["apy"] - frame["apy_reward"],
        "apy_reward": frame["apy"] - frame["apy_base"],
    }
    for column, values in derived.items():
        fillable = frame[column].isna() & values.notna()
        if column != "apy" and checker.strict:
            continue  # the parts may be missing in a canonical frame; strict mode keeps them as given
        action = f"filled missing {column} from apy = apy_base + apy_reward"
        if checker.repair(fillable, column, "missing value (apy_base and apy_reward are given)", action):
            frame.loc[fillable, column] = values[fillable]

