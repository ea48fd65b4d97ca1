"""Forecast quality measures used by training (validation split) and walk-forward evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))


def auc(p_event: np.ndarray, events: np.ndarray) -> float | None:
    """ROC AUC; None when the outcomes are all of one class (undefined)."""
    events = np.asarray(events)
    if len(np.unique(events)) < 2:
        return None
    return float(roc_auc_score(events, p_event))


def brier(p_event: np.ndarray, events: np.ndarray) -> float:
    return float(np.mean((np.asarray(p_event) - np.asarray(events)) ** 2))


NO_SKILL_AUC = 0.5  # the ROC AUC of a ranking by chance: a risk model at or below it has no skill


def brier_of_rate(rate: float, event_rate: float) -> float:
    """`brier` of forecasting `rate` for every row of a set whose share of events is `event_rate`: with the
    training event rate, the base rate a risk model must beat."""
    return event_rate * (1 - rate) ** 2 + (1 - event_rate) * rate**2


def risk_without_skill(auc_score: float | None, brier_score: float, base_brier: float) -> str | None:
    """Why risk forecasts with these scores have no skill (an AUC at or below chance, a Brier score no better
    than the base rate's), or None; an undefined AUC (no event, or only events) says nothing either way."""
    problems = []
    if auc_score is not None and auc_score <= NO_SKILL_AUC:
        problems.append(f"AUC {auc_score:.3f} ({NO_SKILL_AUC:.3f} is chance)")
    if base_brier > 0 and brier_score >= base_brier:
        problems.append(f"Brier {brier_score:.4f}, no better than the base rate's {base_brier:.4f}")
    return ", ".join(problems) or None


def below_share(lower: np.ndarray, actual: np.ndarray) -> float:
    """Share of outcomes below a forecast quantile (a calibrated 10 % quantile gives about 0.1)."""
    return float(np.mean(np.asarray(actual) < np.asarray(lower)))


@dataclass(frozen=True)
class ReliabilityBin:
    """Forecasts with p_event in [low, high): how many, their mean, and how often the event happened."""

    low: float
    high: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


def reliability(p_event: np.ndarray, events: np.ndarray, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] (the last one closed); empty bins have no rates."""
    p_event, events = np.asarray(p_event, dtype=float), np.asarray(events, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p_event, edges[1:-1]), 0, bins - 1)
    table = []
    for i in range(bins):
        inside = which == i
        count = int(inside.sum())
        table.append(ReliabilityBin(
            float(edges[i]), float(edges[i + 1]), count,
            float(p_event[inside].mean()) if count else None,
            float(events[inside].mean()) if count else None,
        ))
    return table
