"""The daemon's store upkeep: compaction between flushes, retention and late deletes on a
thread, both from the [store] config."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from logpipe.config import parse_config
from logpipe.daemon import Daemon, build_pipeline
from logpipe.pipeline import BatchLimits, Pipeline, StoreSink
from logpipe.store import Store
from logpipe.store.maintenance import CompactionPolicy, Compactor, Maintenance
from tests.unit.test_store_flush import PartitionedSource

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


def test_compactor_merges_once_per_step_while_there_is_work(tmp_path: Path) -> None:
    store = Store(tmp_path, segment_bytes=1024)
    flushes(store, 60)
    clock = Clock()
    policy = CompactionPolicy(every_secs=5.0, retention_secs=100.0)
    compactor = Compactor(store, policy, clock=clock, now_ns=lambda: 120 * S)
    assert compactor.step() is None  # not due yet
    clock.now = 5.0
    counts = []
    while (report := compactor.step()) is not None and report.merges:
        counts.append(len(store.manifest("fake").segments))
    assert len(counts) >= 3 and counts == sorted(counts, reverse=True)  # one merge a step
    assert compactor.step() is None  # nothing left: the next look is 5 s later
    segments = store.manifest("fake").segments
    # flushes 0..19 are past retention's cutoff (120 s - 100 s): left to retention
    assert [s.lines for s in segments if s.max_ts < 20 * S] == [4] * 20
    assert all(s.max_ts - s.min_ts < 10 * S for s in segments)  # span: 100 s / 10


def test_retention_and_late_deletes_run_on_their_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path, segment_bytes=1024, delete_delay_s=0.2)
    flushes(store, 10)
    clock = Clock()
    upkeep = Maintenance(store, 5.0, every_secs=60.0, clock=clock, now_ns=lambda: 10 * S)
    upkeep.run_once()
    assert len(store.manifest("fake").segments) == 10  # retention not due yet
    clock.now = 60.0

    def full_disk(rel: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.files, "write_atomic", full_disk)
    with caplog.at_level(logging.ERROR, "logpipe.store.maintenance"):
        upkeep.run_once()  # logged, not raised
    assert "retention failed" in caplog.text
    monkeypatch.undo()
    clock.now = 120.0
    upkeep.run_once()
    assert min(s.max_ts for s in store.manifest("fake").segments) >= 5 * S
    assert len(list(tmp_path.rglob("*.lpz"))) == 10  # retired, not yet deleted
    time.sleep(0.25)
    upkeep.run_once()
    assert len(list(tmp_path.rglob("*.lpz"))) == 5
    stop = threading.Event()
    stop.set()
    upkeep.run(stop)  # returns at once when stopped


def test_policy_caps_the_span_by_retention() -> None:
    assert CompactionPolicy(max_span_secs=3600.0).max_span_ns == 3600 * S
    assert CompactionPolicy(retention_secs=600.0).max_span_ns == 60 * S


class FailingUpkeepSink(StoreSink):
    """Notes when upkeep runs (acks already given?) and fails the first time."""

    def __init__(self, store: Store, source: PartitionedSource) -> None:
        super().__init__(store)
        self.source = source
        self.upkeeps: list[dict[tuple[str, int], int]] = []

    def maintain(self) -> None:
        self.upkeeps.append(dict(self.source.acked))
        if len(self.upkeeps) == 1:
            raise OSError("upkeep failed")


def test_the_runner_calls_upkeep_after_each_flush_is_acked(tmp_path: Path) -> None:
    store = Store(tmp_path)
    source = PartitionedSource(total=2 * 10 * 3, partitions=2, per_chunk=10)
    sink = FailingUpkeepSink(store, source)
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=20, max_age_s=60))
    pipe.start()
    deadline = time.monotonic() + 20
    while len(sink.upkeeps) < 3:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    pipe.stop()
    assert pipe.join(10) and pipe.error is None  # a failing upkeep stops nothing
    assert sink.upkeeps[:3] == [{("t", 0): 10 * k, ("t", 1): 10 * k} for k in (1, 2, 3)]
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_sink_errors_total{sink="store"} 1.0' in text


def test_the_daemon_wires_compaction_and_retention_from_the_config(tmp_path: Path) -> None:
    text = (
        f'[store]\nroot = "{tmp_path}"\nretention_secs = 86400\ncompact_interval_secs = 30\n'
        "compact_target_bytes = 8388608\ndelete_delay_secs = 5\n[server]\nenabled = true\n"
        "port = 0\n"
    )
    config = parse_config(text)
    daemon = Daemon(config)
    assert daemon.store.delete_delay_s == 5.0
    assert daemon._maintenance().retention_secs == 86400.0
    assert daemon.pipeline is not None
    (sink,) = [s for s in daemon.pipeline.sinks if isinstance(s, StoreSink)]
    assert sink.compactor is not None
    assert sink.compactor.policy == CompactionPolicy(every_secs=30.0, target_bytes=8 << 20,
                                                     retention_secs=86400.0)  # fmt: skip
    off = parse_config(text.replace("compact_interval_secs = 30", "compact_interval_secs = 0"))
    pipeline = build_pipeline(off, Store(tmp_path), [PartitionedSource(0, 1, 1)])
    assert pipeline is not None
    (sink,) = [s for s in pipeline.sinks if isinstance(s, StoreSink)]
    assert sink.compactor is None
