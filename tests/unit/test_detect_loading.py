"""load_detector: a model directory's config.json picks a loader from a fixed registry."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from logpipe.detect.loading import DETECTORS, load_detector
from logpipe.detect.windows import ExplainingDetector
from logpipe.errors import ModelError
from tests.detectors import PairDetector

REGISTRY = {"pairs": PairDetector.load}


def model_dir(tmp_path: Path, config: object) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_round_trip_through_the_registry(tmp_path: Path) -> None:
    PairDetector({("alice", "10.0.0.1")}, threshold=0.25).save(tmp_path / "m")
    detector = load_detector(tmp_path / "m", detectors=REGISTRY)
    assert isinstance(detector, PairDetector)
    assert detector.known == {("alice", "10.0.0.1")} and detector.threshold == 0.25


def test_glad_is_loaded_through_glad_detector_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default registry imports logpipe.models.glad only when a model asks for it."""
    seen: list[Path] = []

    class GladDetector:
        name = "glad"
        threshold = 1.0

        @classmethod
        def load(cls, path: Path) -> ExplainingDetector:
            seen.append(path)
            detector: ExplainingDetector = PairDetector()
            return detector

    fake = types.ModuleType("logpipe.models.glad")
    fake.GladDetector = GladDetector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "logpipe.models.glad", fake)
    path = model_dir(tmp_path, {"detector": "glad", "hidden": 64})
    assert isinstance(load_detector(path), PairDetector)
    assert seen == [path]
    assert set(DETECTORS) == {"glad"}


def test_a_missing_detector_class_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "logpipe.models.glad", types.ModuleType("empty"))
    with pytest.raises(ModelError, match=r"no logpipe\.models\.glad\.GladDetector.*'ml' extra"):
        load_detector(model_dir(tmp_path, {"detector": "glad"}))


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"detector": "lstm"}, r"unknown detector 'lstm' in config\.json; .* knows \['pairs'\]"),
        ({"weights": "x"}, r'config\.json has no "detector" name'),
        ({"detector": 3}, r'no "detector" name'),
        (["detector", "pairs"], "must hold a JSON object"),
    ],
)
def test_bad_configs_name_the_directory(tmp_path: Path, config: object, problem: str) -> None:
    path = model_dir(tmp_path, config)
    with pytest.raises(ModelError, match=problem) as info:
        load_detector(path, detectors=REGISTRY)
    assert info.value.path == str(path) and str(info.value).startswith(str(path))


def test_missing_and_unreadable_model_dirs(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a directory"):
        load_detector(tmp_path / "nope", detectors=REGISTRY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_detector(tmp_path / "empty", detectors=REGISTRY)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"detector": "pairs",\n  oops}')
    with pytest.raises(ModelError, match="not valid JSON: line 2, column 3"):
        load_detector(tmp_path / "bad", detectors=REGISTRY)


def test_loader_failures_become_model_errors(tmp_path: Path) -> None:
    path = model_dir(tmp_path, {"detector": "pairs"})  # no "known": PairDetector.load fails
    with pytest.raises(ModelError, match="cannot load the pairs model: KeyError"):
        load_detector(path, detectors=REGISTRY)

    def not_a_detector(path: Path) -> ExplainingDetector:
        return object()  # type: ignore[return-value]

    with pytest.raises(
        ModelError, match=r"returned object, which lacks \['name', 'threshold', 'explain'\]"
    ):
        load_detector(path, detectors={"pairs": not_a_detector})
