"""The simulated vault's guardrails: `[backtest.guardrails]` (`config.BacktestSettings`) over the devnet's.

```toml
[backtest.guardrails]       # the vault's parameters; defaults are the devnet's (strategy.guardrails)
min_rebalance_interval = 3600
max_turnover_bps = 5000
max_loss_bps = 10
min_idle_bps = 500
[backtest.guardrails.markets."<pool id>"]   # optional: the listed pools; default caps 4000 bps, no absolute cap
cap_bps = 4000
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from config import BacktestSettings, ConfigError, describe_errors
from config.loader import problem_with
from strategy.guardrails import DEFAULT_CAP_BPS, DEFAULT_GUARDRAILS, Guardrails
from strategy.units import UINT256_MAX

DEFAULT_MARKET_LIMITS: dict[str, int] = {"cap_bps": DEFAULT_CAP_BPS, "cap_abs": UINT256_MAX}


def vault_guardrails(settings: BacktestSettings, universe: Sequence[str], where: str = "config") -> Guardrails:
    """The simulated vault's guardrails: `[backtest.guardrails]` over the defaults, listing `universe`'s pools
    (with default caps) unless the table lists markets itself."""
    table = dict(settings.guardrails)
    listed = table.pop("markets", None) or {pool: {} for pool in universe}
    if not isinstance(listed, Mapping):
        raise problem_with(where, "backtest.guardrails.markets", "expected a table of pool id -> caps")
    markets = {
        pool: {**DEFAULT_MARKET_LIMITS, **limits} if isinstance(limits, Mapping) else limits
        for pool, limits in listed.items()
    }
    try:
        return Guardrails.from_mapping({**DEFAULT_GUARDRAILS, **table, "markets": markets})
    except ValidationError as error:
        raise ConfigError(describe_errors(error, where, within=("backtest", "guardrails"))) from None
