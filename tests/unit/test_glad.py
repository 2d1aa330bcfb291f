"""GLAD end to end on a tiny login system: it must separate planted anomalies it never saw.

One detector is trained per module (a few seconds on CPU) and shared by the tests that only
score with it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from logpipe.models.glad import GladConfig, GladDetector

from logpipe.detect.loading import load_detector
from logpipe.detect.windows import Event, Window
from logpipe.errors import ModelError, UsageError
from tests.glad_world import REQUEST, session, world

# threads=1: tiny graphs gain nothing from threads, and on a busy 2-core machine torch's
# spinning threads make these tests several times slower
TINY = GladConfig(hidden=32, epochs=15, batch_windows=16, snapshots=2, seed=3, threads=1)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that an anomalous window outscores a normal one (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def trained() -> tuple[GladDetector, list[Window]]:
    train, validation, test = world()
    detector = GladDetector(TINY)
    detector.fit(train, validation=validation)
    return detector, test


def test_separates_relational_and_unseen_template_anomalies(
    trained: tuple[GladDetector, list[Window]],
) -> None:
    detector, test = trained
    scores = detector.score(test)
    labels = np.array([w.label for w in test])
    normal_max = scores[labels == 0].max()
    for kind in ("relational", "unseen"):
        planted = np.array([w.key.startswith(kind) for w in test])
        assert planted.sum() == 4
        # every planted anomaly of each kind is above every normal test window
        assert scores[planted].min() > normal_max, kind
    assert _auc(labels, scores) == 1.0
    # the threshold comes from held-out normal windows: no planted anomaly falls below it
    assert np.isfinite(detector.threshold)
    assert (scores[labels == 1] > detector.threshold).all()
    assert detector.stats.calibration_windows == 40


def test_explanations_name_the_wrong_relation(trained: tuple[GladDetector, list[Window]]) -> None:
    detector, test = trained
    relational = [w for w in test if w.key.startswith("relational")]
    for window, explained in zip(relational, detector.explain(relational, top_k=3), strict=True):
        login = window.events[0]
        user, address = login.params[0], login.params[1]
        top = explained.edges[0]
        assert {top.source, top.target} == {f"user:{user}", f"ip:{address}"}
        assert top.kind == "co-occurs" and top.count >= 1
        assert explained.anomalous and explained.score == pytest.approx(top.score)
        assert [e.score for e in explained.edges] == sorted(
            (e.score for e in explained.edges), reverse=True
        )
    unseen = [w for w in test if w.key.startswith("unseen")]
    for explained in detector.explain(unseen, top_k=1):
        assert "kernel panic" in explained.edges[0].source + explained.edges[0].target


def test_save_load_round_trip_gives_identical_scores(
    trained: tuple[GladDetector, list[Window]], tmp_path: Path
) -> None:
    detector, test = trained
    detector.save(tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "model" / "config.json").read_text())
    assert meta["format"] == "logpipe-glad" and meta["config"]["hidden"] == 32
    loaded = load_detector(tmp_path / "model")  # how the CLI and the daemon load it
    assert isinstance(loaded, GladDetector)
    assert loaded.threshold == detector.threshold
    np.testing.assert_array_equal(loaded.score(test), detector.score(test))
    a, b = loaded.explain(test[-2:], 2), detector.explain(test[-2:], 2)
    assert a == b


def test_load_rejects_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a GLAD model"):
        GladDetector.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other", "version": 9}')
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelError, match="retrain"):
        GladDetector.load(tmp_path)


def test_bad_input_is_handled_and_counted(trained: tuple[GladDetector, list[Window]]) -> None:
    detector, _ = trained
    rng = np.random.default_rng(11)
    before = detector.stats.empty_windows
    empty = Window("empty", 0, 0, ())
    # a window far beyond the graph bounds: thousands of lines, each with new values
    huge_events = tuple(
        Event(i, "E9", REQUEST, (f"/api/x{i}", f"10.9.{i // 250}.{i % 250}", f"u{i}", "500", "3"))
        for i in range(30_000)
    )
    huge = Window("huge", 0, 30_000, huge_events, dropped=7)
    normal = session(rng, "normal", 1)
    scores = detector.score([empty, huge, normal, empty])
    assert np.isfinite(scores).all()
    assert scores[0] == scores[3] == detector.floor  # no evidence: the most normal score
    assert detector.stats.empty_windows == before + 2
    graphs = detector.builder.stats
    assert graphs.overflow_events >= 30_000 - detector.config.max_events + 7
    assert graphs.overflow_nodes > 0 and graphs.bounded_windows >= 1
    assert scores[1] > detector.threshold  # thousands of never-seen users and addresses
    assert detector.report()["glad"]["unseen_entities"] > 0
    # an empty list scores to an empty array
    assert detector.score([]).shape == (0,)


def test_unseen_templates_and_values_are_counted(
    trained: tuple[GladDetector, list[Window]],
) -> None:
    detector, test = trained
    before = detector.stats.unseen_templates
    unseen = [w for w in test if w.key.startswith("unseen")]
    detector.score(unseen)
    assert detector.stats.unseen_templates == before + len(unseen)


def test_fit_trains_on_normal_windows_only() -> None:
    train, _, _ = world(seed=5, train=30, validation=0, test=0)
    bad = [replace(w, label=1) for w in train[:4]]
    detector = GladDetector(replace(TINY, epochs=1))
    detector.fit(bad + train)
    assert detector.stats.skipped_anomalous == 4
    # without validation windows, the last fifth of the normal ones sets the threshold
    assert detector.stats.calibration_windows == 6
    assert detector.stats.train_windows == 24


@pytest.mark.parametrize("windows", [1, 2, 16, 40])
def test_short_trainings_run(windows: int) -> None:
    # one epoch over a handful of windows is a few optimiser steps: the learning-rate
    # schedule must still be well formed (it divided by zero for 2 to 10 steps)
    train, _, _ = world(seed=6, train=windows, validation=0, test=0)
    detector = GladDetector(replace(TINY, epochs=1, batch_windows=4))
    detector.fit(train, validation=train[:1])
    assert np.isfinite(detector.threshold)


def test_misuse_is_a_usage_error() -> None:
    detector = GladDetector(TINY)
    with pytest.raises(UsageError, match="not trained"):
        detector.score([])
    with pytest.raises(UsageError, match="at least one normal window"):
        detector.fit([Window("e", 0, 0, ())])
    with pytest.raises(UsageError, match="invalid GLAD configuration"):
        GladConfig(hidden=33, heads=2)
    with pytest.raises(UsageError, match="unknown GLAD config keys: colour"):
        GladConfig.from_json({"colour": 1})


def test_training_is_deterministic_and_leaves_global_rng_alone() -> None:
    train, validation, test = world(seed=9, train=40, validation=10, test=10)
    config = replace(TINY, epochs=2)
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    first = GladDetector(config)
    first.fit(train, validation=validation)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = GladDetector(config)
    second.fit(train, validation=validation)
    np.testing.assert_array_equal(first.score(test), second.score(test))


@pytest.mark.gpu
def test_cuda_training_and_scoring() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    train, validation, test = world()
    detector = GladDetector(replace(TINY, device="cuda"))
    detector.fit(train, validation=validation)
    assert detector.device.type == "cuda" and detector.stats.device.startswith("cuda")
    scores = detector.score(test)
    labels = np.array([w.label for w in test])
    assert np.isfinite(scores).all()
    assert _auc(labels, scores) >= 0.95
