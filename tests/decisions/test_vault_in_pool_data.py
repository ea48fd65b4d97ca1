"""`[chain] vault_in_pool_data` on a real anvil: a keeper whose markets are the pools its data records takes its
own on-chain positions out of their supply, writes the switch into its bundle, and the bundle re-executes from
itself alone."""

import json
from pathlib import Path
from typing import Any

import pytest

from decisions.bundle import VAULT_IN_POOL_DATA, bundle_path
from decisions.check import BundleVerdict, check_decision
from decisions.codec import decode
from decisions.replay import market_depth
from journal.db import CycleStatus, Decision
from keeper.startup import open_keeper
from strategy.decision_record import table_from_json
from strategy.guardrails import VaultState
from tests.keeper.keeper_world import artifact_dir, config_of, funded, keeper_table, llama

pytestmark = pytest.mark.anvil


def told(decision: Decision) -> dict[str, tuple[int, int]]:
    """(supply, held) of each market the allocator was told a supply of, as the decision journaled them."""
    return {p["market"]: (int(p["supply"]), int(p.get("held", "0")))
            for p in decision.predictions.values() if "supply" in p}


def test_a_keeper_inside_its_pools_takes_its_positions_out_of_their_supply_and_verify_agrees(
        keeper_table: dict[str, Any]) -> None:
    config = config_of({**keeper_table, "chain": {**keeper_table["chain"], VAULT_IN_POOL_DATA: True}})
    with open_keeper(config) as keeper:
        first = keeper.run_cycle()
        assert first.status == CycleStatus.REBALANCED, first.reason
        invested = keeper.db.last_decision()
        assert invested is not None
        recorded = told(invested)  # the vault was all idle: the supplies as the data records them
        assert recorded and all(held == 0 for _, held in recorded.values())
        _, state = keeper.chain.reader.guardrails_and_state()
        keeper.run_cycle(dry_run=True)  # the same day's data, the vault now in its markets
        decision = keeper.db.last_decision()
    assert decision is not None and decision.id != invested.id
    held = {market: x for market, x in state.positions.items() if 0 < x < recorded.get(market, (0, 0))[0]}
    assert held, state.positions  # the first cycle invested where a supply is known
    assert told(decision) == {market: (supply - held.get(market, 0), held.get(market, 0))
                              for market, (supply, _) in recorded.items()}

    directory = Path(config.service.decisions_dir)
    document = json.loads(bundle_path(directory, decision.decision_hash).read_text())
    assert document["config"][VAULT_IN_POOL_DATA] is True
    # the replay derives the same supplies from the bundle alone, the positions from its chain state
    inputs = document["inputs"]
    again = market_depth(document, table_from_json(inputs["history"]), table_from_json(inputs["pools"]),
                         decode(VaultState, document["state"]["vault"]))
    assert {market: (depth.supply, depth.held) for market, depth in (again or {}).items()} == told(decision)
    record = document["record"]
    check = check_decision(directory, decision.decision_hash, chain_id=record["chain_id"], vault=record["vault"])
    assert check.verdict == BundleVerdict.REPRODUCED, check.lines()

