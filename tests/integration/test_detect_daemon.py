"""``[detect]`` wired into the daemon's pipeline: tail a file, archive every line, alert
on the planted anomaly at a real webhook, metrics in the pipeline's registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logpipe.config import parse_config
from logpipe.daemon import build_pipeline
from logpipe.detect.stage import DetectStage
from logpipe.errors import ModelError
from logpipe.pipeline import ParseStage
from logpipe.store import Store
from tests.alert_receiver import receiver
from tests.detectors import PairDetector

USERS = [("alice", "10.0.0.1"), ("bob", "10.0.0.2")]


def write_log(path: Path) -> int:
    """Four minutes of logins every 5 s; mallory appears from a new address in minute 3."""
    lines = []
    for t in range(0, 240, 5):
        user, ip = USERS[t // 5 % 2]
        lines.append(f"2023-11-14T22:{t // 60:02d}:{t % 60:02d}Z login ok user={user} ip={ip}")
        if t == 130:
            lines.append("2023-11-14T22:02:11Z login ok user=alice ip=198.51.100.23")
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def config_text(tmp: Path, model: Path, hook: str, detector: str = "pairs") -> str:
    (model / "config.json").write_text(
        json.dumps({"detector": detector, "threshold": 0.5, "known": USERS})
    )
    return f"""
[store]
root = "{tmp / "store"}"
[[sources.files]]
paths = ["{tmp / "logs"}/*.log"]
labels = {{ app = "auth" }}
rescan_secs = 0.1
[pipeline]
max_batch_age_secs = 0.1
[server]
host = "127.0.0.1"
port = 3999
[detect]
enabled = true
model_dir = "{model}"
window_secs = 60
[[detect.alerts]]
type = "webhook"
url = "{hook}"
backoff_secs = 0.01
"""


def test_the_daemon_pipeline_archives_everything_and_alerts_once(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "model").mkdir()
    count = write_log(tmp_path / "logs" / "auth.log")
    with receiver() as r:
        config = parse_config(config_text(tmp_path, tmp_path / "model", r.url), environ={})
        store = Store(config.store.root)
        pipeline = build_pipeline(config, store, detectors={"pairs": PairDetector.load})
        assert pipeline is not None
        [parse, stage] = pipeline.stages  # detection reads the parse stage's templates
        assert isinstance(parse, ParseStage) and isinstance(stage, DetectStage)
        pipeline.start()
        [post] = r.wait_for(1, timeout_s=20)  # minute 3 closes when minute 4's lines arrive
        pipeline.stop()
        assert pipeline.join(30)
        assert pipeline.error is None
        assert len(r.posts) == 1  # the flush scores the last window: no second alert
    body = post.json()
    assert body["key"] == '{app="auth", filename="' + str(tmp_path / "logs" / "auth.log") + '"}'
    assert body["window"]["start"] == "2023-11-14T22:02:00Z"
    assert body["edges"][0]["target"] == "ip:198.51.100.23"
    assert body["url"].startswith("http://127.0.0.1:3999/loki/api/v1/query_range?query=")
    assert pipeline.stats.lines_out == count  # detection never costs the archive a line
    exposition = pipeline.metrics.exposition().decode()
    assert "logpipe_detect_windows_scored_total 4.0" in exposition
    assert 'logpipe_alerts_sent_total{sink="webhook"} 1.0' in exposition


def test_an_unknown_detector_stops_the_daemon_at_start(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    text = config_text(tmp_path, tmp_path / "model", "http://127.0.0.1:1/", detector="lstm")
    config = parse_config(text, environ={})
    with pytest.raises(ModelError, match=r"unknown detector 'lstm'.*knows \['glad'\]"):
        build_pipeline(config, Store(tmp_path / "store"))


def test_disabled_detection_adds_no_stage(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    text = config_text(tmp_path, tmp_path / "model", "http://127.0.0.1:1/")
    config = parse_config(text, environ={"LOGPIPE_DETECT__ENABLED": "false"})
    pipeline = build_pipeline(config, Store(tmp_path / "store"))
    assert pipeline is not None
    assert [type(s) for s in pipeline.stages] == [ParseStage]
