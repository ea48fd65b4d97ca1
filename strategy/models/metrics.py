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
