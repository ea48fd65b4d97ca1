"""What `keeper status`, `vault info` and the page must show of the keeper's last decision, checked against the
journal and the chain (never against the code that shows it): per market the APY on chain next to the forecast
and event probability the keeper decided on, the target, the market's part of the expected gain, and the limits
that bound the allocation."""

import re
from collections.abc import Mapping

from web3 import Web3

from chain.deployment import Deployment
from config import Config
from depositor.dashboard import percent_text, rate_to_apy
from strategy.guardrails import BPS
from strategy.units import format_units
from tests.keeper.keeper_world import journal

DECISION_CELLS = ("APY on chain", "forecast APY", "p(event)", "target", "expected gain", "limit")


def table_rows(output: str, columns: int) -> dict[str, list[str]]:
    """The rows with `columns` cells of the rich tables in `output`, by their first cell (the market's name)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if line.startswith("│") and len(cells) == columns:
            rows[cells[0]] = cells[1:]
    return rows


def decision_table(output: str) -> dict[str, dict[str, str]]:
    """The decision table of a terminal screen: per market name, its cells by DECISION_CELLS title."""
    return {name: dict(zip(DECISION_CELLS, cells, strict=True))
            for name, cells in table_rows(output, 1 + len(DECISION_CELLS)).items()}


def assert_shows_the_decision(shown: Mapping[str, Mapping[str, str]], lines: list[str], w3: Web3,
                              deployment: Deployment, config: Config) -> None:
    """`shown`: per market name, its cells by DECISION_CELLS title; `lines`: what the screen says (among them, of
    the decision). The keeper's first cycle started from an all-idle vault and rebalanced."""
    db = journal(config)
    try:
        decision = db.last_decision()
    finally:
        db.close()
    vault = deployment.contract(w3, "Vault", deployment.vault)
    [event] = vault.events.Rebalanced().get_logs(from_block=deployment.deployed_at)
    total = event["args"]["total_before"]
    forecasts = {p["market"]: p for p in decision.predictions.values()}
    gains = 0.0
    for market in deployment.markets:
        cells = shown[market.name]
        rate = deployment.contract(w3, "MockMarket", market.address).functions.rate_per_second().call()
        assert cells["APY on chain"] == percent_text(rate_to_apy(rate)), (market.name, cells)
        assert cells["forecast APY"] == percent_text(forecasts[market.address]["apy_pct"] / 100), (market.name, cells)
        assert cells["p(event)"] == percent_text(forecasts[market.address]["p_event"]), (market.name, cells)
        target = decision.targets[market.address]
        assert cells["target"] == format_units(target, 6, "USDC"), (market.name, cells)
        gain = float(re.sub(r"[^0-9.-]", "", cells["expected gain"]))
        assert gain >= 0 and (gain > 0) == (target > 0), (market.name, cells)  # each supply was worth its cost
        gains += gain
        cap = vault.functions.market_config(market.address).call()[1] * total // BPS
        assert (cells["limit"] == "at its cap") == (target >= cap * 0.999), (market.name, cells, cap)
    assert abs(gains - decision.expected_gain / 10**6) < 1e-5 * len(deployment.markets), (gains, decision)
    [said] = [line for line in lines if line.startswith(f"the last decision (cycle {decision.cycle_id}) was made by")]
    assert f"by the model {decision.model_hash}: optimal, expected gain " in said, said
    assert f"expected gain {format_units(round(decision.expected_gain), 6, 'USDC')} over 7 days" in said, said
    # the vault's own account of the move: it moved all the turnover limit allows, so that limit bound the plan
    assert event["args"]["moved"] * BPS == vault.functions.max_turnover_bps().call() * total, event
    assert "limits that bound it: turnover limit" in lines, lines
