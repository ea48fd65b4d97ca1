"""Re-execution of a decision from its bundle: the keeper's own features -> forecasts -> allocation
(`strategy.forecast.policy_forecasts`, `strategy.decision.decide`) on the bundle's inputs, chain state and
configuration."""

from collections.abc import Mapping
from typing import Any

import pandas as pd

from decisions.bundle import VAULT_IN_POOL_DATA
from decisions.codec import decode
from strategy.allocator import AllocatorConfig
from strategy.decision import Verdict, decide, forecasts_for_markets
from strategy.decision_record import table_from_json, table_from_json_or_none
from strategy.forecast import policy_forecasts
from strategy.guardrails import Guardrails, VaultState
from strategy.market_supply import AssetUnit, MarketDepth, besides_vault, depth_on
from strategy.models import ModelArtifact, ModelError
from strategy.models.dataset import known_at, model_features
from strategy.models.promotion import Known, PolicyState


def replay(document: Mapping[str, Any], artifact: ModelArtifact | None) -> Verdict:
    """The verdict the bundle's decision reaches again: by `artifact`, or by the trailing-best rule (None)."""
    inputs, config, state = document["inputs"], document["config"], document["state"]
    at = pd.Timestamp(inputs["at"])
    history, news = known_at(table_from_json(inputs["history"]), table_from_json_or_none(inputs.get("news")), at)
    known = Known(model_features(history, news, table_from_json(inputs["pools"])), history, _no_training)
    policy = PolicyState(champion=artifact) if artifact is not None else PolicyState(fallback="the bundle's rule")
    forecasts, _ = policy_forecasts(policy, known, at.floor("D"))
    guardrails = decode(Guardrails, state["guardrails"])
    markets = dict(config["markets"])
    listed = [market for market in markets.values() if market in guardrails.markets]
    by_market = {markets[pool]: forecast for pool, forecast in forecasts.items() if pool in markets}
    stale = [markets[pool] for pool in state["unknown_pools"]]
    vault = decode(VaultState, state["vault"])
    depth = market_depth(document, history, table_from_json(inputs["pools"]), vault)
    return decide(vault, guardrails,
                  forecasts_for_markets(listed, by_market, stale, depth),
                  decode(AllocatorConfig, config["allocator"]), int(state["chain_time"]))


def market_depth(document: Mapping[str, Any], history: pd.DataFrame, pools_meta: pd.DataFrame,
                 vault: VaultState) -> dict[str, MarketDepth] | None:
    """Each market's depth (its supply besides the vault and its rate curve's elasticity), derived again from the
    bundle's inputs in the asset its config names, as the keeper told the allocator
    (`strategy.market_supply.depth_on`), less the `vault`'s positions where the config says the pools' data
    holds them (`decisions.bundle.VAULT_IN_POOL_DATA`); None for a bundle from before the allocator was told
    it, which decided without it."""
    asset = document["config"].get("asset")
    if asset is None:
        return None
    markets = dict(document["config"]["markets"])
    by_pool = depth_on(history, pools_meta, AssetUnit(str(asset["symbol"]), int(asset["decimals"])),
                       pd.Timestamp(document["inputs"]["at"]))
    by_market = {markets[pool]: units for pool, units in by_pool.items() if pool in markets}
    return besides_vault(by_market, vault.positions) if document["config"].get(VAULT_IN_POOL_DATA) else by_market


def _no_training(day: pd.Timestamp) -> ModelArtifact:
    raise ModelError("a replay never trains")  # only `advance` trains, and a replay does not step the policy
