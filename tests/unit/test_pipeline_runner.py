"""The pipeline runner with fake sources and sinks: flow, acks, batching, backpressure,
drain, retries, stage failures, signals, metrics (no broker, no store)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence

import pyarrow as pa
import pytest

from logpipe.errors import PipelineError
from logpipe.pipeline import (
    AckToken,
    Batcher,
    BatchLimits,
    Chunk,
    DrainFn,
    Drops,
    LineLimit,
    Pipeline,
    ResumeFn,
    WriteResult,
)
from logpipe.records import raw_batch


def _chunk(first: int, n: int, partition: int = 0, source: str = "fake") -> Chunk:
    lines = [f"line {i}".encode() for i in range(first, first + n)]
    batch = raw_batch(lines, source="t", offsets=list(range(first, first + n)), partition=partition)
    return Chunk(
        source=source,
        key=("t", partition),
        batch=batch,
        first=first,
        last=first + n - 1,
        token=("t", partition, first + n),
        idempotent=True,
        received_ns=time.monotonic_ns(),
    )


class FakeSource:
    """Emits ``total`` lines in chunks of ``per_chunk`` over ``partitions``, then idles."""

    def __init__(self, total: int, per_chunk: int = 10, partitions: int = 1) -> None:
        self.name = "fake"
        self.total, self.per_chunk, self.partitions = total, per_chunk, partitions
        self.emitted = 0
        self.next = [0] * partitions
        self.acked: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.closed = False
        self.polls = 0
        self.lock = threading.Lock()

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        del drain, resume

    def poll(self, timeout_s: float) -> list[Chunk]:
        self.polls += 1
        if self.emitted >= self.total:
            time.sleep(min(timeout_s, 0.01))
            return []
        p = self.emitted // self.per_chunk % self.partitions
        n = min(self.per_chunk, self.total - self.emitted)
        chunk = _chunk(self.next[p], n, p)
        self.next[p] += n
        self.emitted += n
        return [chunk]

    def ack(self, tokens: Sequence[AckToken]) -> None:
        with self.lock:
            for token in tokens:
                assert isinstance(token, tuple)
                self.acked[(token[0], token[1])] = token[2]

    def commit(self) -> None:
        with self.lock:
            self.committed.update(self.acked)

    def close(self) -> None:
        self.commit()
        self.closed = True

    def lag(self) -> dict[tuple[str, int], int]:
        return {}


class FakeSink:
    """Records lines per key; can be slow or fail its first ``fail`` writes."""

    def __init__(self, delay_s: float = 0.0, fail: int = 0) -> None:
        self.name = "fake-sink"
        self.delay_s, self.fail = delay_s, fail
        self.lines: dict[tuple[str, int], list[bytes]] = {}
        self.spans: list[tuple[int, int] | None] = []
        self.writes = 0

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        del key
        return None

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        time.sleep(self.delay_s)
        if self.fail:
            self.fail -= 1
            raise OSError("No space left on device")
        self.writes += 1
        self.lines.setdefault(key, []).extend(table.column("line").to_pylist())
        self.spans.append(span)
        return WriteResult(lines=table.num_rows, segments=1)

    def close(self) -> None:
        pass


def _run_until(pipeline: Pipeline, cond: object, timeout_s: float = 10.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_every_line_reaches_the_sink_once_and_is_acked_after() -> None:
    source, sink = FakeSource(1000, per_chunk=37, partitions=3), FakeSink()
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=200, max_age_s=0.05))
    pipe.start()
    _run_until(pipe, lambda: sum(map(len, sink.lines.values())) == 1000)
    pipe.stop()
    assert pipe.join(10)
    got = sorted(x for lines in sink.lines.values() for x in lines)
    assert got == sorted(f"line {i}".encode() for p in range(3) for i in range(source.next[p]))
    assert source.closed
    assert source.committed == {("t", p): source.next[p] for p in range(3)}
    assert pipe.stats.lines_in == pipe.stats.lines_out == 1000
    assert pipe.error is None


def test_batcher_merges_a_keys_chunks_into_one_range() -> None:
    b = Batcher(BatchLimits(max_lines=100, max_bytes=1 << 30, max_age_s=60))
    b.add(_chunk(0, 30), now=0.0)
    b.add(_chunk(30, 30), now=0.0)
    b.add(_chunk(0, 10, partition=1), now=0.0)
    assert not b.due(now=1.0)
    b.add(_chunk(60, 30), now=0.0)
    assert b.due(now=1.0)  # 100 lines
    pending = {p.key: p for p in b.take()}
    assert (pending[("t", 0)].first, pending[("t", 0)].last, pending[("t", 0)].rows) == (0, 89, 90)
    assert pending[("t", 0)].token == ("t", 0, 90)
    assert pending[("t", 1)].rows == 10
    assert not b.due(now=100.0) and len(b) == 0


def test_batcher_flushes_by_age_and_bytes_and_rejects_out_of_order() -> None:
    b = Batcher(BatchLimits(max_lines=10**6, max_bytes=1 << 30, max_age_s=0.5))
    b.add(_chunk(0, 5), now=10.0)
    assert not b.due(now=10.4)
    assert b.wait_s(now=10.4) == pytest.approx(0.1)
    assert b.due(now=10.5)
    with pytest.raises(ValueError, match="does not follow"):
        b.add(_chunk(3, 5), now=10.5)
    small = Batcher(BatchLimits(max_lines=10**6, max_bytes=100, max_age_s=60))
    small.add(_chunk(0, 50), now=0.0)
    assert small.due(now=0.0)


def test_backpressure_a_slow_sink_stops_the_source_from_running_ahead() -> None:
    source = FakeSource(10**9, per_chunk=10)
    sink = FakeSink(delay_s=0.05)
    limits = BatchLimits(max_lines=10, max_age_s=0.01)
    pipe = Pipeline([source], [], [sink], limits=limits, queue_chunks=4)
    pipe.start()
    time.sleep(0.5)
    pipe.stop()
    assert pipe.join(10)
    written = sum(map(len, sink.lines.values()))
    # in flight at most: the queue (4 chunks), the batch being written, one blocked put
    assert source.emitted - written <= 10 * (4 + 3)
    assert source.committed[("t", 0)] == written  # drained: all emitted was written


def test_drain_on_stop_writes_what_is_batched_before_closing() -> None:
    source, sink = FakeSource(55, per_chunk=5), FakeSink()
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=10**6, max_age_s=3600))
    pipe.start()
    _run_until(pipe, lambda: source.emitted == 55)
    assert sink.writes == 0  # nothing due yet: the batch waits
    pipe.stop()
    assert pipe.join(10)
    assert len(sink.lines[("t", 0)]) == 55
    assert sink.spans == [(0, 54)]
    assert source.committed == {("t", 0): 55}


def test_a_failing_sink_is_retried_nothing_lost_and_health_reports_it() -> None:
    source, sink = FakeSource(100, per_chunk=50), FakeSink(fail=3)
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=100, max_age_s=0.01))
    pipe.start()
    _run_until(pipe, lambda: sink.fail == 1)
    snap = pipe.health.snapshot()
    assert snap.live and not snap.ready
    assert any("No space left" in r for r in snap.reasons)
    _run_until(pipe, lambda: sum(map(len, sink.lines.values())) == 100)
    _run_until(pipe, lambda: pipe.health.snapshot().ready)
    pipe.stop()
    assert pipe.join(10)
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_sink_errors_total{sink="fake-sink"} 3.0' in text


class CheckpointOnFullDisk(FakeSource):
    """A source whose position file cannot be written for its first ``fail`` commits."""

    def __init__(self, total: int, fail: int) -> None:
        super().__init__(total, per_chunk=10)
        self.fail = fail

    def commit(self) -> None:
        with self.lock:
            dirty = self.acked != self.committed
        if dirty and self.fail:
            self.fail -= 1
            raise OSError(28, "No space left on device", "checkpoint.json")
        super().commit()


def test_a_failing_commit_is_reported_and_retried_never_stopping_the_source() -> None:
    source, sink = CheckpointOnFullDisk(100, fail=2), FakeSink()
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=10, max_age_s=0.01))
    pipe.start()
    _run_until(pipe, lambda: source.fail == 1)
    assert any("cannot save the position" in r for r in pipe.health.snapshot().reasons)
    _run_until(pipe, lambda: source.fail == 0 and source.committed == {("t", 0): 100}, 15)
    _run_until(pipe, lambda: pipe.health.snapshot().ready)
    pipe.stop()
    assert pipe.join(10) and pipe.error is None
    assert sum(map(len, sink.lines.values())) == 100
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_source_errors_total{kind="commit",source="fake"} 2.0' in text


class Exploding:
    """A buggy stage: raises on batches holding ``line 1``."""

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if b"line 1" in batch.column("line").to_pylist():
            raise RuntimeError("bug")
        return batch

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_raising_stage_drops_its_batch_counted_and_the_stream_goes_on() -> None:
    source, sink = FakeSource(20, per_chunk=10), FakeSink()
    pipe = Pipeline([source], [Exploding()], [sink], limits=BatchLimits(max_age_s=0.01))
    pipe.start()
    _run_until(pipe, lambda: source.committed.get(("t", 0)) == 20)
    pipe.stop()
    assert pipe.join(10)
    assert sink.lines[("t", 0)] == [f"line {i}".encode() for i in range(10, 20)]
    assert pipe.stats.dropped == {"stage_error": 10}
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_dropped_lines_total{reason="stage_error",source="fake"} 10.0' in text


def test_line_limit_truncates_or_drops_with_a_reason() -> None:
    batch = raw_batch([b"short", b"x" * 100, b"ok"])
    cut = LineLimit(10).process(batch)
    assert cut.column("line").to_pylist() == [b"short", b"x" * 10, b"ok"]
    dropper = LineLimit(10, "drop")
    kept = dropper.process(batch)
    assert kept.column("line").to_pylist() == [b"short", b"ok"]
    assert kept.column("offset").to_pylist() == [0, 107]
    assert dropper.take_drops() == {"line_too_long": 1}
    assert dropper.take_drops() == {}


def test_source_drops_are_counted_and_their_offsets_still_acked() -> None:
    class Dropping(FakeSource):
        def poll(self, timeout_s: float) -> list[Chunk]:
            chunks = super().poll(timeout_s)
            for c in chunks:  # pretend the source could not decode the whole chunk
                c.batch = c.batch.slice(0, 0)
                c.drops = Drops({"invalid_json": c.last - c.first + 1})
            return chunks

    source, sink = Dropping(30, per_chunk=10), FakeSink()
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_age_s=0.01))
    pipe.start()
    _run_until(pipe, lambda: source.committed.get(("t", 0)) == 30)
    pipe.stop()
    assert pipe.join(10)
    assert pipe.stats.dropped == {"invalid_json": 30}
    assert pipe.stats.lines_in == 30 and pipe.stats.lines_out == 0


def test_a_failing_source_stops_the_pipeline_with_an_error() -> None:
    class Broken(FakeSource):
        def poll(self, timeout_s: float) -> list[Chunk]:
            raise RuntimeError("unknown topic")

    pipe = Pipeline([Broken(1)], [], [FakeSink()])
    with pytest.raises(PipelineError, match="unknown topic"):
        pipe.run(handle_signals=False)


def test_sigterm_drains_and_run_returns() -> None:
    source, sink = FakeSource(40, per_chunk=10), FakeSink()
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_lines=10**6, max_age_s=3600))
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    pipe.run()
    timer.join()
    assert len(sink.lines[("t", 0)]) == 40
    assert source.closed
    assert not pipe.health.snapshot().live


def test_pipeline_rejects_bad_wiring() -> None:
    with pytest.raises(PipelineError, match="at least one source"):
        Pipeline([], [], [FakeSink()])
    with pytest.raises(PipelineError, match="at least one sink"):
        Pipeline([FakeSource(1)], [], [])
    with pytest.raises(PipelineError, match="unique"):
        Pipeline([FakeSource(1), FakeSource(1)], [], [FakeSink()])


class FailsAtFlush:
    """A stage whose flush (at the end of the stream) raises: a bug in a stage."""

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch

    def flush(self) -> None:
        raise RuntimeError("flush bug")

    def close(self) -> None:
        pass


def test_a_failing_stage_thread_stops_the_pipeline_without_hanging() -> None:
    source, sink = FakeSource(30, per_chunk=10), FakeSink()
    pipe = Pipeline([source], [FailsAtFlush()], [sink], limits=BatchLimits(max_age_s=0.01))
    pipe.start()
    _run_until(pipe, lambda: sum(map(len, sink.lines.values())) == 30)
    pipe.stop()
    assert pipe.join(10)
    assert isinstance(pipe.error, RuntimeError) and "flush bug" in str(pipe.error)
    assert source.committed == {("t", 0): 30}  # what was written before is committed
