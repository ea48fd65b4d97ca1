"""Fixtures of the decision bundle tests: a keeper cycle on a real anvil that rebalanced and wrote its bundle."""

from pathlib import Path
from typing import Any

import pytest

from config import Config
from journal.db import CycleStatus
from keeper.cycle import Keeper
from tests.keeper.keeper_world import (
    artifact_dir,
    funded,
    keeper,
    keeper_config,
    keeper_table,
    llama,
)


@pytest.fixture
def rebalanced(keeper: Keeper, keeper_config: Config, keeper_table: dict[str, Any]) -> tuple[str, Path, str]:
    """(tx hash, the keeper's bundle directory, the devnet JSON) after one rebalancing cycle."""
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason
    return outcome.tx_hash, keeper_config.service.decisions_dir, keeper_table["chain"]["deployment"]
