"""The baselines find planted count and sequence anomalies, and see only what they should."""

from __future__ import annotations

import numpy as np
import pytest

from logpipe.detect.baselines import DeepLogDetector, IsolationForestDetector, PCADetector
from logpipe.detect.vocab import UNKNOWN, EventVocabulary
from logpipe.detect.windows import Event, Window
from logpipe.errors import UsageError


def _window(key: str, ids: str) -> Window:
    events = tuple(Event(i, eid, f"t {eid}", (), i + 1) for i, eid in enumerate(ids.split()))
    return Window(key, 0, len(events), events, 0, None)


def _normal(n: int, seed: int) -> list[Window]:
    """A B C D E F, with C repeated 1-3 times and an optional G before F."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        middle = " ".join(["C"] * int(rng.integers(1, 4)))
        tail = "G F" if rng.random() < 0.3 else "F"
        out.append(_window(f"n{i}", f"A B {middle} D E {tail}"))
    return out


TRAIN = _normal(150, seed=1)
TEST_NORMAL = _normal(40, seed=2)
COUNT_ANOMALY = _window("count", "A B " + " ".join(["C"] * 12) + " D E F")
ORDER_ANOMALY = _window("order", "F E D C B A")  # the counts of a normal window, reversed
UNSEEN = _window("unseen", "A B C X D E F")
EMPTY = _window("empty", "")


def _scores(detector: PCADetector | IsolationForestDetector | DeepLogDetector) -> dict[str, float]:
    windows = [*TEST_NORMAL, COUNT_ANOMALY, ORDER_ANOMALY, UNSEEN, EMPTY]
    scores = detector.score(windows)
    assert scores.shape == (len(windows),) and np.isfinite(scores).all()
    out = {w.key: float(s) for w, s in zip(windows, scores, strict=True)}
    out["max_normal"] = float(scores[: len(TEST_NORMAL)].max())
    return out


def test_vocabulary_maps_unseen_ids_to_one_slot() -> None:
    vocab = EventVocabulary.fit(TRAIN)
    assert vocab.ids == ("A", "B", "C", "D", "E", "F", "G")
    assert vocab.encode(UNSEEN).tolist()[3] == UNKNOWN
    counts = vocab.counts([UNSEEN, EMPTY])
    assert counts.shape == (2, 8)
    assert counts[0].tolist() == [1, 1, 1, 1, 1, 1, 1, 0]  # unseen first, then A..G
    assert counts[1].sum() == 0


def test_pca_flags_count_and_unseen_anomalies_but_not_order() -> None:
    pca = PCADetector()
    pca.fit(TRAIN)
    s = _scores(pca)
    assert s["count"] > 10 * s["max_normal"]
    assert s["unseen"] > s["max_normal"]
    same_counts = PCADetector()
    same_counts.fit(TRAIN)
    reference = same_counts.score([_window("ref", "A B C D E F")])[0]
    assert s["order"] == pytest.approx(reference)  # a count model is blind to order


def _busy(n: int, seed: int) -> list[Window]:
    """Four event types, each 1 + Poisson(2) times per window."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        counts = rng.poisson(2, 4) + 1
        body = " ".join(" ".join([e] * int(k)) for e, k in zip("BCDE", counts, strict=True))
        out.append(_window(f"b{i}", f"A {body} F"))
    return out


@pytest.mark.parametrize("seed", [0, 3])
def test_isolation_forest_flags_a_count_storm(seed: int) -> None:
    # IsolationForest isolates what is extreme in many counts at once (a retry storm);
    # a value in a gap of one count lands in a leaf full of normal windows and is not seen
    forest = IsolationForestDetector(seed=seed)
    forest.fit(_busy(200, seed=1))
    normal = forest.score(_busy(50, seed=2))
    storm = forest.score([_window("storm", "A " + "B C D E " * 10 + "F")])[0]
    assert storm > normal.max() + 0.05
    again = IsolationForestDetector(seed=seed)
    again.fit(_busy(200, seed=1))
    assert again.score(TEST_NORMAL).tolist() == forest.score(TEST_NORMAL).tolist()


def test_deeplog_flags_order_and_unseen_anomalies_deterministically() -> None:
    deeplog = DeepLogDetector(hidden=32, layers=1, epochs=25, seed=5)
    deeplog.fit(TRAIN)
    assert deeplog.candidates() == 3  # ceil(7 events seen / 3)
    s = _scores(deeplog)
    assert s["max_normal"] == 0.0  # every normal step is among the top candidates
    assert s["order"] >= 3  # most steps of the reversed session are surprises
    assert s["unseen"] >= 1  # an unseen id is always a miss
    assert s["empty"] == 0.0
    again = DeepLogDetector(hidden=32, layers=1, epochs=25, seed=5)
    again.fit(TRAIN)
    assert again.score([ORDER_ANOMALY, UNSEEN]).tolist() == [s["order"], s["unseen"]]


@pytest.mark.parametrize(
    "detector", [PCADetector(), IsolationForestDetector(), DeepLogDetector(epochs=1)]
)
def test_misuse_is_a_usage_error(
    detector: PCADetector | IsolationForestDetector | DeepLogDetector,
) -> None:
    with pytest.raises(UsageError):
        detector.score(TEST_NORMAL)
    with pytest.raises(UsageError):
        detector.fit([])
