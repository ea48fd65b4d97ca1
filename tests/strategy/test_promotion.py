"""The retraining-and-promotion policy on a synthetic market: the gate keeps a challenger worse than
persistence out, the first model is judged on its validation split, warm-up trusts nothing, and the policy's
windows are no part of a model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from strategy.forecast import policy_forecasts
from strategy.models import ModelArtifact, train_artifact
from strategy.models.artifact import ARTIFACT_FILE
from strategy.models.promotion import (
    MODEL,
    TRAILING_BEST,
    Known,
    PolicyState,
    advance,
    gate_window,
    retrain_due,
)
from strategy.synthetic import SyntheticMarket
from strategy.trailing_best import RULE_HASH, trailing_best
from tests.strategy.promotion_world import (
    SETTINGS,
    day,
    known_on,
    promotion_features,
    promotion_market,
    shuffled,
)


def test_a_challenger_worse_than_persistence_is_not_promoted_and_the_champion_stays(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    market = promotion_market
    champion = train_artifact(market.history, market.news, market.pools, train_end=day(170), settings=SETTINGS)
    state = PolicyState.with_champion(champion)
    retrained = day(170 + SETTINGS.retrain_every_days)
    # The challenger and its trial learn from a history whose APYs are shuffled; they are judged on the real one.
    step = advance(state, retrained, known_on(market, promotion_features, retrained, shuffled(market.history)),
                   SETTINGS)

    verdict = step.verdict
    assert verdict is not None and not verdict.promoted, verdict
    scores = verdict.scores
    assert (scores.first, scores.last) == (retrained - pd.Timedelta(days=20), retrained - pd.Timedelta(days=7))
    assert scores.model > scores.persistence and scores.rows == 14 * 6
    assert "did not beat both" in verdict.reason
    assert step.state.champion is champion and step.state.rule == MODEL
    assert step.state.last_trained == retrained  # tried: the next retraining is due a full period later
    assert not retrain_due(step.state, retrained + pd.Timedelta(days=SETTINGS.retrain_every_days - 1), SETTINGS)
    forecasts, model_hash = policy_forecasts(step.state, known_on(market, promotion_features, retrained), retrained)
    assert model_hash == champion.content_hash and forecasts


def test_the_first_model_is_accepted_when_its_validation_split_is_not_worse_than_persistence(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    known = known_on(promotion_market, promotion_features, day(150))
    step = advance(PolicyState(), day(150), known, SETTINGS)
    validation = step.verdict.challenger.metadata.validation
    assert validation["mae_model"] <= validation["mae_baseline"]  # this market's first model is good enough
    assert step.verdict.promoted and step.verdict.reason.startswith("first model, not worse than persistence")
    assert step.state == PolicyState(step.verdict.challenger, day(150)) and step.state.rule == MODEL


def test_a_first_model_worse_than_persistence_leaves_the_trailing_best_rule_deciding(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    model = train_artifact(promotion_market.history, promotion_market.news, promotion_market.pools,
                           train_end=day(150), settings=SETTINGS)
    validation = {**model.metadata.validation, "mae_model": model.metadata.validation["mae_baseline"] + 0.1}
    worse = ModelArtifact(model.model_texts, model.metadata.model_copy(update={"validation": validation}))
    known = known_on(promotion_market, promotion_features, day(150))
    step = advance(PolicyState(), day(150), Known(known.features, known.history, lambda _: worse), SETTINGS)

    assert not step.verdict.promoted and step.verdict.reason.startswith("first model, worse than persistence")
    assert step.state.champion is None and step.state.rule == TRAILING_BEST
    assert step.state.fallback.startswith("no model has passed the gate: first model, worse")
    assert policy_forecasts(step.state, known, day(150)) == (trailing_best(known.history, day(150)), RULE_HASH)


def test_while_too_little_history_to_train_nothing_decides_and_each_step_tries_again(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    known = known_on(promotion_market, promotion_features, day(10))
    step = advance(PolicyState(), day(10), known, SETTINGS)
    assert step.verdict is None and step.untrained.startswith("too little history to train")
    assert step.state == PolicyState() and step.state.rule is None and retrain_due(step.state, day(11), SETTINGS)
    assert policy_forecasts(step.state, known, day(10)) == ({}, None)


def test_the_gate_window_starts_no_earlier_than_the_champions_training(
        promotion_market: SyntheticMarket) -> None:
    champion = train_artifact(promotion_market.history, promotion_market.news, promotion_market.pools,
                              train_end=day(150), settings=SETTINGS)
    assert gate_window(champion, day(175), SETTINGS) == (day(155), day(168))  # the last 14 labelled days
    often = SETTINGS.model_copy(update={"retrain_every_days": 10})
    assert gate_window(champion, day(160), often) == (day(150), day(153))  # cut to those it did not train on
    assert gate_window(champion, day(155), often)[0] > gate_window(champion, day(155), often)[1]  # none yet


def test_the_policy_windows_are_no_part_of_a_model(promotion_market: SyntheticMarket, tmp_path: Path) -> None:
    market = promotion_market
    other = SETTINGS.model_copy(update={"gate_window_days": 30, "fallback_window_days": 3})
    trained = [train_artifact(market.history, market.news, market.pools, train_end=day(100), settings=settings)
               for settings in (SETTINGS, other)]
    assert trained[0].content_hash == trained[1].content_hash
    saved = json.loads((trained[1].save(tmp_path) / ARTIFACT_FILE).read_text())["metadata"]["settings"]
    assert "gate_window_days" not in saved and "fallback_window_days" not in saved
    assert saved["retrain_every_days"] == SETTINGS.retrain_every_days
    assert ModelArtifact.load(tmp_path).content_hash == trained[1].content_hash
