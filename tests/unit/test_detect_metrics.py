"""Detection metrics on hand-computed cases, and the one threshold rule."""

from __future__ import annotations

import numpy as np
import pytest

from logpipe.detect.metrics import (
    average_precision,
    evaluate,
    precision_recall_f1,
    threshold_from_normal,
)
from logpipe.errors import UsageError


def test_precision_recall_f1_by_hand() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    predicted = [True, True, False, True, False, False, False, False]
    # tp = 2, fp = 1, fn = 2: P = 2/3, R = 1/2, F1 = 2PR/(P+R) = 4/7
    p, r, f1 = precision_recall_f1(labels, predicted)
    assert (p, r) == pytest.approx((2 / 3, 1 / 2))
    assert f1 == pytest.approx(4 / 7)
    assert precision_recall_f1([0, 0], [False, False]) == (0.0, 0.0, 0.0)


def test_average_precision_by_hand() -> None:
    # ranked: 0.9 (1), 0.8 (0), 0.7 (1), 0.1 (0): AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)
    # perfect ranking and worst ranking of one positive among four
    assert average_precision([0, 0, 1, 0], [0.1, 0.2, 0.9, 0.3]) == 1.0
    assert average_precision([0, 0, 1, 0], [0.5, 0.6, 0.1, 0.7]) == pytest.approx(1 / 4)
    # ties are one threshold: {0.5: 1 pos, 1 neg} then {0.2: 1 pos}: AP = 1/2 * 1/2 + 1/2 * 2/3
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(1 / 4 + 1 / 3)
    assert average_precision([0, 0], [0.1, 0.2]) == 0.0


def test_average_precision_matches_sklearn_on_random_data() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 60)
        labels[0] = 1
        scores = np.round(rng.random(60), 1)  # many ties
        assert average_precision(labels, scores) == pytest.approx(
            average_precision_score(labels, scores)
        )


def test_threshold_rule_is_the_worst_normal_validation_window_and_strict() -> None:
    threshold = threshold_from_normal([0.1, 0.4, 0.25])
    assert threshold == 0.4
    result = evaluate([0, 1, 1, 0], [0.4, 0.41, 0.3, 0.1], threshold)
    # 0.4 ties the worst normal window: not an alert; 0.41 is
    assert (result.tp, result.fp, result.fn, result.tn) == (1, 0, 1, 2)
    assert (result.precision, result.recall) == (1.0, 0.5)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.aupr == pytest.approx(average_precision([0, 1, 1, 0], [0.4, 0.41, 0.3, 0.1]))


def test_bad_inputs_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        threshold_from_normal([])
    with pytest.raises(UsageError):
        evaluate([0, None], [0.1, 0.2], 0.0)
    with pytest.raises(UsageError):
        evaluate([0, 1], [0.1, float("nan")], 0.0)
    with pytest.raises(UsageError):
        evaluate([0, 1], [0.1], 0.0)
    with pytest.raises(UsageError):
        average_precision([0, 2], [0.1, 0.2])
