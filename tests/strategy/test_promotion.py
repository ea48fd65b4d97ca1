"""The retraining-and-promotion policy on a synthetic market: the gate keeps a challenger worse than
persistence out, the first model is judged on its validation split, warm-up trusts nothing, and the policy's
windows are no part of a model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from strategy.forecast import policy_forecasts
from strategy.models import ModelArtifact, ModelError, train_artifact
from strategy.models.artifact import ARTIFACT_FILE, YieldModel
from strategy.models.promotion import (
    MODEL,
    TRAILING_BEST,
    Known,
    PolicyState,
    advance,
    first_verdict,
    gate_window,
    judge,
    retrain_due,
)
from strategy.models.training import train_yield_model
from strategy.synthetic import SyntheticMarket
from strategy.targets import build_targets
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


def test_a_trial_trained_alone_gives_the_gate_the_verdict_of_the_whole_training(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    market = promotion_market
    champion = train_artifact(market.history, market.news, market.pools, train_end=day(170), settings=SETTINGS)
    retrained = day(170 + SETTINGS.retrain_every_days)
    whole = known_on(market, promotion_features, retrained)
    trials: list[pd.Timestamp] = []

    def trial(train_end: pd.Timestamp) -> YieldModel:
        trials.append(train_end)
        return train_yield_model(market.history, market.news, market.pools, train_end, SETTINGS,
                                 features=promotion_features)

    alone = Known(whole.features, whole.history, whole.train, trial)
    challenger = whole.train(retrained)
    verdicts = [judge(champion, challenger, retrained, known, SETTINGS) for known in (whole, alone)]
    assert trials == [verdicts[0].scores.first]  # the trial was trained alone, on the window's first day
    assert verdicts[0] == verdicts[1] and verdicts[0].scores.rows == 14 * 6


def test_the_rows_of_days_are_cut_by_binary_search_as_a_scan_cuts_them(
        promotion_market: SyntheticMarket, promotion_features: pd.DataFrame) -> None:
    known = known_on(promotion_market, promotion_features, day(200))
    days = known.features.index.get_level_values("timestamp")
    for first, last in ((day(0), day(0)), (day(3), day(40)), (day(195), day(230)), (day(-5), day(-1))):
        expected = known.features[(days >= first) & (days <= last)]
        pd.testing.assert_frame_equal(known.labelled(first, last, SETTINGS.target_params()),
                                      expected.join(build_targets(known.history[known.history["timestamp"] >= first],
                                                                  params=SETTINGS.target_params())["fwd_apy_mean"])
                                      .dropna(subset=["fwd_apy_mean", "apy_mean_7d"]))
        pd.testing.assert_frame_equal(known.features_on(last), known.features[days == last].droplevel("timestamp"))
    assert known.features_on(day(201)).empty


def test_features_out_of_order_are_refused(promotion_market: SyntheticMarket,
                                           promotion_features: pd.DataFrame) -> None:
    known = known_on(promotion_market, promotion_features, day(200))
    shuffled_rows = Known(known.features.sample(frac=1, random_state=0), known.history, known.train)
    with pytest.raises(ValueError, match=r"^the features known must be sorted by \(timestamp, pool\)"):
        shuffled_rows.features_on(day(100))


@pytest.mark.parametrize("missing", ["rows", "mae_model", "mae_baseline"])
def test_a_first_model_without_its_validation_scores_is_refused_by_name(promotion_market: SyntheticMarket,
                                                                         missing: str) -> None:
    """An artifact made some other way than `train_artifact` may lack the scores the first gate reads."""
    model = train_artifact(promotion_market.history, promotion_market.news, promotion_market.pools,
                           train_end=day(100), settings=SETTINGS)
    validation = {name: value for name, value in model.metadata.validation.items() if name != missing}
    bare = ModelArtifact(model.model_texts, model.metadata.model_copy(update={"validation": validation}))
    assert first_verdict(model, day(100)).scores is not None
    with pytest.raises(ModelError, match=f"the model's metadata has no validation {missing} to judge it on"):
        first_verdict(bare, day(100))
