"""Detection metrics and the one threshold rule every detector is held to.

Why one rule: a benchmark that picks each detector's threshold on the test labels, or tunes
it per data set, measures the tuning rather than the detector. Here every detector, on every
data set, is thresholded the same way, from scores of **normal validation windows only**
(held out from the training period, never fitted on, never from the test period):

    threshold = the highest score of any normal validation window;
    a window is anomalous when its score is *strictly greater* than the threshold.

So no normal validation window would alert (the operating point an on-call engineer asks
for), ties with the worst normal window do not alert, and the rule needs no knob.
:func:`average_precision` (AUPR) is threshold-free and complements it.

AUPR is computed as scikit-learn's ``average_precision_score`` does: the sum over distinct
score thresholds, from high to low, of (recall gained) x (precision there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from logpipe.errors import UsageError

__all__ = [
    "Evaluation",
    "average_precision",
    "evaluate",
    "precision_recall_f1",
    "threshold_from_normal",
]


def _labels(labels: Sequence[int | None] | np.ndarray) -> np.ndarray:
    if any(label is None for label in labels):
        raise UsageError("every scored window needs a label (0 or 1) to be evaluated")
    out = np.asarray(labels, dtype=np.int64)
    if out.size and not np.isin(out, (0, 1)).all():
        raise UsageError("labels must be 0 (normal) or 1 (anomalous)")
    return out


def _scores(scores: Sequence[float] | np.ndarray, n: int | None = None) -> np.ndarray:
    out = np.asarray(scores, dtype=np.float64)
    if out.ndim != 1 or (n is not None and len(out) != n):
        raise UsageError(f"scores: one per window expected, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise UsageError("scores must be finite numbers (a detector returned NaN or inf)")
    return out


def threshold_from_normal(validation_scores: Sequence[float] | np.ndarray) -> float:
    """The threshold rule (module docstring): the highest normal validation score."""
    scores = _scores(validation_scores)
    if not len(scores):
        raise UsageError("no normal validation windows to set a threshold from")
    return float(scores.max())


def precision_recall_f1(
    labels: Sequence[int | None] | np.ndarray, predicted: Sequence[bool] | np.ndarray
) -> tuple[float, float, float]:
    """Precision, recall and F1 of 0/1 predictions; 0.0 where undefined (no positives)."""
    y = _labels(labels)
    p = np.asarray(predicted, dtype=bool)
    if p.shape != y.shape:
        raise UsageError("predictions and labels differ in length")
    tp = int((p & (y == 1)).sum())
    fp = int((p & (y == 0)).sum())
    fn = int((~p & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def average_precision(
    labels: Sequence[int | None] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float:
    """Area under the precision-recall curve as average precision (0.0 with no positives)."""
    y = _labels(labels)
    s = _scores(scores, len(y))
    positives = int(y.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    # evaluate at the last position of each run of equal scores (one threshold per value)
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp_at = tp[last]
    precision = tp_at / (last + 1)
    recall = tp_at / positives
    gained = np.diff(np.r_[0.0, recall])
    return float((gained * precision).sum())


@dataclass(frozen=True)
class Evaluation:
    """A detector's figures on one test set at one threshold."""

    precision: float
    recall: float
    f1: float
    aupr: float
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def evaluate(
    labels: Sequence[int | None] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
) -> Evaluation:
    """P/R/F1 of ``scores > threshold`` against ``labels``, and AUPR of ``scores``."""
    y = _labels(labels)
    s = _scores(scores, len(y))
    predicted = s > threshold
    precision, recall, f1 = precision_recall_f1(y, predicted)
    return Evaluation(
        precision=precision,
        recall=recall,
        f1=f1,
        aupr=average_precision(y, s),
        threshold=float(threshold),
        tp=int((predicted & (y == 1)).sum()),
        fp=int((predicted & (y == 0)).sum()),
        fn=int((~predicted & (y == 1)).sum()),
        tn=int((~predicted & (y == 0)).sum()),
    )
