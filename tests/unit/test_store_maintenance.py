"""The daemon's store upkeep: compaction and retention on their schedules, from config."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from logpipe.config import parse_config
from logpipe.daemon import Daemon
from logpipe.store import Store
from logpipe.store.maintenance import Maintenance, MaintenancePolicy

S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def flushes(store: Store, n: int) -> None:
    for k in range(n):
        ts = np.arange(4, dtype=np.int64) + k * S
        store.ingest("fake", {"app": "a"}, ts, [f"flush {k} line {i}".encode() for i in range(4)])


def test_compaction_and_retention_run_when_due(tmp_path: Path) -> None:
    store = Store(tmp_path, segment_bytes=1024)
    flushes(store, 30)
    clock = Clock()
    policy = MaintenancePolicy(retention_secs=100.0, retention_every_secs=60.0,
                               compact_every_secs=5.0)  # fmt: skip
    upkeep = Maintenance(store, policy, clock=clock, now_ns=lambda: 120 * S)
    upkeep.run_once()
    assert len(store.manifest("fake").segments) == 30  # nothing due yet
    clock.now = 5.0
    upkeep.run_once()  # compaction only; it leaves flushes 0..19 (expired) to retention
    segments = store.manifest("fake").segments
    assert [s.lines for s in segments if s.max_ts < 20 * S] == [4] * 20
    assert all(s.max_ts - s.min_ts < 10 * S for s in segments)  # span: 100 s / 10
    assert len(segments) < 30
    clock.now = 60.0
    upkeep.run_once()  # retention now, then compaction again
    lines = [line for b in store.read("fake", direction="forward") for line in b["line"]]
    assert [x.as_py() for x in lines] == [
        f"flush {k} line {i}".encode() for k in range(20, 30) for i in range(4)
    ]


def test_failures_are_logged_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path, segment_bytes=1024)
    flushes(store, 6)
    clock = Clock()
    upkeep = Maintenance(store, MaintenancePolicy(compact_every_secs=1.0), clock=clock)

    def full_disk(rel: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.files, "write_atomic", full_disk)
    clock.now = 1.0
    with caplog.at_level(logging.ERROR, "logpipe.store.maintenance"):
        upkeep.run_once()
    assert "compaction failed" in caplog.text
    monkeypatch.undo()
    clock.now = 2.0
    upkeep.run_once()
    assert len(store.manifest("fake").segments) < 6


def test_run_stops_and_policy_ticks() -> None:
    assert MaintenancePolicy(compact_every_secs=None).tick_secs is None
    assert MaintenancePolicy(retention_secs=100.0, compact_every_secs=None).tick_secs == 60.0
    assert MaintenancePolicy(compact_every_secs=5.0).tick_secs == 5.0
    assert MaintenancePolicy(compact_max_span_secs=3600.0).max_span_ns == 3600 * S
    assert MaintenancePolicy(retention_secs=600.0).max_span_ns == 60 * S
    stop = threading.Event()
    stop.set()
    Maintenance(Store("/nonexistent-store"), MaintenancePolicy()).run(stop)  # returns at once


def test_daemon_takes_the_policy_from_the_store_config(tmp_path: Path) -> None:
    text = (
        f'[store]\nroot = "{tmp_path}"\nretention_secs = 86400\ncompact_interval_secs = 30\n'
        "compact_target_bytes = 8388608\ndelete_delay_secs = 5\n[server]\nenabled = false\n"
    )
    daemon = Daemon(parse_config(text))
    upkeep = daemon._maintenance()
    assert upkeep.policy == MaintenancePolicy(retention_secs=86400.0, compact_every_secs=30.0,
                                              compact_target_bytes=8 << 20)  # fmt: skip
    assert daemon.store.delete_delay_s == 5.0
    off = Daemon(parse_config(f'[store]\nroot = "{tmp_path}"\ncompact_interval_secs = 0\n'
                              "[server]\nenabled = false\n"))  # fmt: skip
    assert off._maintenance().policy.tick_secs is None
