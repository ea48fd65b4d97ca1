"""DIFFERENT TARGETS on a real anvil: a keeper that publishes one model but decides with another (here one
trained to fear the best-paying market) is caught, market by market, although every hash of its bundle holds."""

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from config import Config
from journal.db import CycleStatus
from keeper.cycle import Keeper
from keeper.models import CycleModel
from strategy.config import ModelSettings
from strategy.data import align_to_daily
from strategy.data.defillama import parse_pools
from strategy.models import ModelArtifact, train_artifact
from tests.cli import vaultbot

pytestmark = pytest.mark.anvil  # the keeper fixtures come from tests/decisions/conftest.py


def test_a_published_model_that_did_not_decide_gives_different_targets_per_market(
        keeper: Keeper, keeper_config: Config, keeper_table: dict[str, Any], llama) -> None:
    now = datetime.now(UTC)
    history = align_to_daily(llama.history(now))
    # Every market of the history illiquid whenever its APY tops the day's: this model learns that the best rate
    # comes with a loss event, where the champion saw none, and leaves the market the champion prefers.
    best = history["apy"] >= history.groupby("timestamp")["apy"].transform("max")
    warned = history.assign(utilization=best.map({True: 1.0, False: 0.5}))
    trained = train_artifact(warned, llama.news(now),
                             parse_pools(llama.pools_payload(now)), train_end=pd.Timestamp(now).floor("D"),
                             settings=ModelSettings())
    # An illiquid spell costs no price, so the model measures its events as costing nothing and would not act on
    # its fear: published as a model that prices each at 5 % of the position.
    published = ModelArtifact(trained.model_texts, trained.metadata.model_copy(update={"loss_given_event": 0.05}))
    deciding = keeper.models.for_cycle

    def publish_another(inputs) -> CycleModel:
        model = deciding(inputs)  # the forecasts of the champion decide ...
        assert model.champion is not None and model.champion.content_hash != published.content_hash
        # ... while the record and the bundle name the retrained model
        return dataclasses.replace(model, model_hash=published.content_hash, champion=published)

    keeper.models.for_cycle = publish_another
    outcome = keeper.run_cycle()
    assert outcome.status == CycleStatus.REBALANCED, outcome.reason

    result = vaultbot("verify", outcome.tx_hash, "--bundle", str(keeper_config.service.decisions_dir),
                      "--json", keeper_table["chain"]["deployment"])
    assert result.exit_code == 1, result.output
    verdict = result.output.strip().splitlines()[-1]
    assert verdict.startswith("DIFFERENT TARGETS: market 0x"), result.output
    assert f"model artifact {published.content_hash} loads and hashes to its name" in result.output
    diffs = re.findall(r"market (0x[0-9a-f]{40}): recorded (\d+), re-executed (\d+) \(([+-]\d+)\)", verdict)
    assert diffs and all(int(new) - int(old) == int(delta) != 0 for _, old, new, delta in diffs), verdict
