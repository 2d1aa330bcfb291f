"""The pipeline runner: sources → stages → sinks, with backpressure, batching and drain.

Threads and data flow::

    source thread (one per source) ──> bounded queue ──> stage thread ──> bounded queue
      poll → chunks                    (backpressure:    stages per chunk,      │
      commit what was acked             put blocks)      in order               v
                                                                          writer thread
                                                              batcher, sinks, checkpoints, acks

Why this shape: a source blocked on a full queue stops polling, so a slow disk slows
consumption instead of growing memory. One writer thread keeps each key's writes in
order, which the store's offset ranges need. A source commits only what the writer has
acked, and the writer acks only after every sink's write returned: offsets never run
ahead of durable data. The stages get a thread of their own (when there are any) because
their work (the parse stage's regex kernels) releases the GIL and so overlaps the writer's
store work on another core; one thread keeps them in order.

Stopping (:meth:`Pipeline.stop`, or SIGTERM/SIGINT under :meth:`Pipeline.run`): sources
stop polling, each waits until the writer has written and acked everything it emitted
(a *drain barrier* in the queue), commits and closes; then the writer flushes and exits.
A sink that keeps failing during the drain is given ``drain_timeout_s``; what it did not
write is not acked, so it is read again after a restart.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

from logpipe.errors import PipelineError
from logpipe.pipeline.api import (
    AckToken,
    Checkpoints,
    Chunk,
    CountsDrops,
    Maintains,
    Sink,
    SinkItem,
    Source,
    Stage,
    WriteResult,
    WritesMany,
)
from logpipe.pipeline.batching import Batcher, BatchLimits, Pending
from logpipe.pipeline.health import Health
from logpipe.pipeline.metrics import PipelineMetrics
from logpipe.records import RAW_SCHEMA
from logpipe.signals import drain_on_signals

__all__ = ["Pipeline", "PipelineStats"]

log = logging.getLogger(__name__)

_POLL_S = 0.2
_MAX_BACKOFF_S = 5.0
_COMMIT_RETRY_S = 1.0

_T = TypeVar("_T")


@dataclass
class _Barrier:
    """Queue item: the writer flushes everything before it, then sets ``done``."""

    done: threading.Event = field(default_factory=threading.Event)


class _End:
    """Queue item: every source has finished; flush and exit."""


@dataclass
class PipelineStats:
    """Totals since start, for tests and the benchmark (metrics carry the same)."""

    lines_in: int = 0
    lines_out: int = 0
    flushes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count


class Pipeline:
    """Runs ``sources`` through ``stages`` into ``sinks``.

    ``queue_chunks`` bounds the chunks in flight between sources and the writer (the
    backpressure point); ``limits`` says when pending chunks are flushed. ``metrics`` and
    ``health`` are created when not given and readable at any time from any thread.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        stages: Sequence[Stage] = (),
        sinks: Sequence[Sink] = (),
        *,
        limits: BatchLimits | None = None,
        queue_chunks: int = 64,
        drain_timeout_s: float = 30.0,
        metrics: PipelineMetrics | None = None,
        health: Health | None = None,
    ) -> None:
        if not sources:
            raise PipelineError("a pipeline needs at least one source")
        if not sinks:
            raise PipelineError("a pipeline needs at least one sink")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise PipelineError(f"source names must be unique: {names}")
        if queue_chunks < 1:
            raise PipelineError("queue_chunks must be positive")
        self.sources = list(sources)
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.batcher = Batcher(limits)
        self.drain_timeout_s = drain_timeout_s
        self.metrics = metrics if metrics is not None else PipelineMetrics()
        self.health = health if health is not None else Health()
        self.stats = PipelineStats()
        self.error: BaseException | None = None
        self._queue: queue.Queue[Chunk | _Barrier | _End] = queue.Queue(queue_chunks)
        # stage thread -> writer (the same queue when there are no stages)
        self._staged_q: queue.Queue[Chunk | _Barrier | _End] = (
            queue.Queue(queue_chunks) if self.stages else self._queue
        )
        self._stager: threading.Thread | None = None
        self._by_name = {s.name: s for s in self.sources}
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writer: threading.Thread | None = None
        self._stats_lock = threading.Lock()

    # -- public API ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and one thread per source; returns at once."""
        if self._writer is not None:
            raise PipelineError("the pipeline was already started")
        self.health.problem("starting", None)
        self.health.set_live(True)
        self.metrics.live.set(1)
        self._writer = threading.Thread(target=self._write_loop, name="logpipe-writer")
        self._writer.start()
        if self.stages:
            self._stager = threading.Thread(target=self._stage_loop, name="logpipe-stages")
            self._stager.start()
        for source in self.sources:
            self.health.problem(f"source {source.name}", "connecting")
            t = threading.Thread(
                target=self._source_loop, args=(source,), name=f"logpipe-source-{source.name}"
            )
            t.start()
            self._threads.append(t)
        threading.Thread(target=self._finish, name="logpipe-finish", daemon=True).start()

    def stop(self) -> None:
        """Ask for a graceful drain; returns at once (:meth:`join` waits for it)."""
        self._stopping.set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until everything stopped; True when it did within ``timeout_s``."""
        return self._done.wait(timeout_s)

    def run(self, *, handle_signals: bool = True) -> None:
        """Start, run until :meth:`stop` or SIGTERM/SIGINT (main thread only), drain.

        Raises :class:`PipelineError` when a part failed for good, after draining what
        could be drained.
        """
        with drain_on_signals(self.stop, log, handle_signals):
            self.start()
            while not self._done.wait(0.5):
                pass
        if self.error is not None:
            raise PipelineError(f"pipeline stopped: {self.error}") from self.error

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- sources ------------------------------------------------------------------------

    def _source_loop(self, source: Source) -> None:
        name = source.name
        try:
            source.open(self._drain, self._resume)
            self.health.problem(f"source {name}", None)
            next_lag = next_commit = 0.0
            while not self._stopping.is_set():
                chunks = source.poll(_POLL_S)
                for chunk in chunks:
                    self._count_in(chunk)
                    self._put(chunk, lag_of=source)
                now = time.monotonic()
                if now >= next_commit:
                    next_commit = 0.0 if self._commit(source) else now + _COMMIT_RETRY_S
                if now >= next_lag:
                    next_lag = now + 1.0
                    self._report_lag(source)
            self._report_lag(source)
            if not self._drain(self.drain_timeout_s):
                log.warning("source %s: drain timed out; unacked records will be re-read", name)
            source.close()
        except BaseException as exc:
            log.exception("source %s failed; stopping the pipeline", name)
            self.error = self.error or exc
            self._stopping.set()
            with contextlib.suppress(Exception):
                source.close()

    def _commit(self, source: Source) -> bool:
        """Commit what was acked; a failure to write the position (a full disk under a
        file checkpoint) is reported and retried, not a reason to stop: the data is safe
        in the sinks, and an older position only means re-reading after a crash."""
        key = f"source {source.name} commit"
        try:
            source.commit()
        except OSError as exc:
            self.metrics.source_errors.labels(source.name, "commit").inc()
            self.health.problem(key, f"cannot save the position: {exc}")
            log.warning("source %s: commit failed (%s); retrying", source.name, exc)
            return False
        self.health.problem(key, None)
        return True

    def _report_lag(self, source: Source) -> None:
        """Consumer lag for the metrics: best effort, never a reason to stop a source."""
        try:
            lags = source.lag()
        except Exception as exc:  # noqa: BLE001 - a metric must not stop the stream
            log.debug("source %s: lag unavailable (%s)", source.name, exc)
            return
        for (topic, partition), lag in lags.items():
            self.metrics.lag.labels(source.name, topic, str(partition)).set(lag)

    def _resume(self, key: tuple[str, int]) -> int | None:
        """The last offset of ``key`` held by every sink that records offsets."""
        held = [s.resume_offset(key) for s in self.sinks]
        known = [h for h in held if h is not None]
        return min(known) if known else None

    def _count_in(self, chunk: Chunk) -> None:
        if chunk.truncated:
            self.metrics.truncated.labels(chunk.source).inc(chunk.truncated)
        self.metrics.lines_in.labels(chunk.source).inc(chunk.batch.num_rows)
        self.metrics.bytes_in.labels(chunk.source).inc(chunk.bytes_in)
        with self._stats_lock:
            self.stats.lines_in += chunk.batch.num_rows + sum(chunk.drops.counts.values())
            for reason, count in chunk.drops.counts.items():
                self.metrics.dropped.labels(chunk.source, reason).inc(count)
                self.metrics.lines_in.labels(chunk.source).inc(count)
                self.stats.drop(reason, count)

    def _put(self, item: Chunk | _Barrier | _End, lag_of: Source | None = None) -> None:
        """Blocks while the queue is full (backpressure), unless its reader (the stage
        thread, or the writer when there are no stages) is gone.

        ``lag_of``: the source whose thread is putting; its lag is refreshed while it waits,
        so a stalled pipeline (a full disk) shows a growing lag instead of the last one.
        """
        next_lag = time.monotonic() + 1.0
        consumer = self._stager or self._writer
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
            except queue.Full:
                if consumer is None or not consumer.is_alive():
                    raise PipelineError("the stage or writer thread is gone") from None
                if lag_of is not None and time.monotonic() >= next_lag:
                    next_lag = time.monotonic() + 1.0
                    self._report_lag(lag_of)
                continue
            self.metrics.queue_depth.set(self._queue.qsize())
            return

    def _drain(self, timeout_s: float) -> bool:
        """Block until the writer has written and acked everything queued before now."""
        barrier = _Barrier()
        self._put(barrier)
        deadline = time.monotonic() + timeout_s
        while not barrier.done.wait(_POLL_S):
            if time.monotonic() > deadline or self._writer is None or not self._writer.is_alive():
                return False
        return True

    def _finish(self) -> None:
        for t in self._threads:
            t.join()
        try:
            self._put(_End())
        except PipelineError:
            log.warning("writer is gone; nothing left to flush")
        if self._stager is not None:
            self._stager.join()
        if self._writer is not None:
            self._writer.join()
        self.health.set_live(False)
        self.metrics.live.set(0)
        self.metrics.ready.set(0)
        self._done.set()

    # -- stages -------------------------------------------------------------------------

    def _stage_loop(self) -> None:
        """Run every chunk through the stages, in order, and hand it to the writer."""
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._writer is None or not self._writer.is_alive():
                        raise PipelineError("the writer thread is gone") from None
                    continue
                self.metrics.queue_depth.set(self._queue.qsize())
                if isinstance(item, Chunk):
                    item = self._staged(item)
                elif isinstance(item, _End):
                    for stage in self.stages:
                        stage.flush()
                self._put_staged(item)
                if isinstance(item, _End):
                    return
        except BaseException as exc:
            log.exception("stage thread failed; stopping the pipeline")
            self.error = self.error or exc
            self._stopping.set()
            self._abort.set()
            with contextlib.suppress(PipelineError):
                self._put_staged(_End())  # the writer flushes what it holds and exits
            self._unblock(self._queue, self._threads)

    def _put_staged(self, item: Chunk | _Barrier | _End) -> None:
        while True:
            try:
                self._staged_q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self._writer is None or not self._writer.is_alive():
                    raise PipelineError("the writer thread is gone") from None

    def _unblock(
        self, q: queue.Queue[Chunk | _Barrier | _End], producers: Sequence[threading.Thread]
    ) -> None:
        """After a failure: empty ``q`` so its producers, blocked on a full queue, notice
        the stop, until they are gone or the end marker comes."""
        while True:
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                if all(not t.is_alive() for t in producers):
                    return
                continue
            if isinstance(item, _End):
                return

    # -- writer -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            self._write_items()
        except BaseException as exc:
            log.exception("writer failed; stopping the pipeline")
            self.error = self.error or exc
            self._stopping.set()
            self._abort.set()
            producers = [self._stager] if self._stager is not None else self._threads
            self._unblock(self._staged_q, producers)
        finally:
            for stage in self.stages:
                with contextlib.suppress(Exception):
                    stage.close()
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    sink.close()

    def _write_items(self) -> None:
        self.metrics.ready.set(1)
        while True:
            self.health.beat()
            self._update_ready()
            wait = self.batcher.wait_s()
            try:
                item = self._staged_q.get(timeout=_POLL_S if wait is None else min(wait, _POLL_S))
            except queue.Empty:
                if self.batcher.due():
                    self._flush()
                continue
            if self._stager is None:
                self.metrics.queue_depth.set(self._queue.qsize())
            if isinstance(item, _End):
                self._flush()
                return
            if isinstance(item, _Barrier):
                self._flush()
                item.done.set()
                continue
            self.batcher.add(item if self._stager is not None else self._staged(item))
            if self.batcher.due():
                self._flush()

    def _update_ready(self) -> None:
        self.metrics.ready.set(1 if self.health.snapshot().ready else 0)

    def _staged(self, chunk: Chunk) -> Chunk:
        """The chunk after every stage; a stage that raises drops the chunk's rows,
        counted as ``stage_error`` (its range is still acked: re-reading would fail the
        same way), and the stream goes on."""
        batch = chunk.batch
        for stage in self.stages:
            if batch.num_rows == 0:
                break
            try:
                batch = stage.process(batch)
            except Exception:
                log.exception("stage %s failed on %d lines", type(stage).__name__, batch.num_rows)
                self._drop(chunk.source, "stage_error", batch.num_rows)
                batch = batch.slice(0, 0)
            if isinstance(stage, CountsDrops):
                for reason, count in stage.take_drops().items():
                    self._drop(chunk.source, reason, count)
        chunk.batch = batch
        return chunk

    def _drop(self, source: str, reason: str, count: int) -> None:
        if count:
            self.metrics.dropped.labels(source, reason).inc(count)
            with self._stats_lock:
                self.stats.drop(reason, count)

    def _flush(self) -> None:
        pending = self.batcher.take()
        if not pending:
            return
        started = time.monotonic()
        tables = [item.table() if item.batches else RAW_SCHEMA.empty_table() for item in pending]
        for sink in self.sinks:
            if isinstance(sink, WritesMany):  # one write per source: the store's segments
                by_source: dict[str, list[int]] = {}
                for i, item in enumerate(pending):
                    by_source.setdefault(item.source, []).append(i)
                for rows in by_source.values():
                    self._write_many_with_retry(sink, [pending[i] for i in rows],
                                                [tables[i] for i in rows])  # fmt: skip
            else:
                for item, table in zip(pending, tables, strict=True):
                    self._write_with_retry(sink, item, table)
        acks: dict[str, list[AckToken]] = {}
        for item in pending:
            acks.setdefault(item.source, []).append(item.token)
        for stage in self.stages:  # what the stages learnt is durable before the acks
            if isinstance(stage, Checkpoints):
                name = getattr(stage, "name", type(stage).__name__)
                counter = self.metrics.stage_errors.labels(name)
                self._retrying(f"stage {name}", stage.checkpoint, counter.inc)
        for name, tokens in acks.items():
            self._by_name[name].ack(tokens)
        now = time.monotonic()
        self.metrics.flush_seconds.observe(now - started)
        self._maintain()
        # A flush is the pipeline's low-water mark: its batches are written and dropped.
        # Arrow's allocator (mimalloc) keeps freed pages for reuse; handing them back
        # here keeps the daemon's RSS near what it uses (an in-process run of the soak's
        # load: 196 -> 133 MiB mean RSS), for about 0.1 ms.
        pa.default_memory_pool().release_unused()
        for item in pending:
            if item.received_ns:
                latency = now - item.received_ns / 1e9
                self.metrics.batch_latency.labels(item.source).observe(max(0.0, latency))
        with self._stats_lock:
            self.stats.flushes += 1

    def _maintain(self) -> None:
        """Sinks' upkeep after a flush (see :class:`Maintains`): failures only logged."""
        for sink in self.sinks:
            if not isinstance(sink, Maintains):
                continue
            try:
                sink.maintain()
            except Exception as exc:  # noqa: BLE001 - upkeep must not stop the stream
                self.metrics.sink_errors.labels(sink.name).inc()
                log.warning("sink %s: upkeep failed (%s); will retry after the next flush",
                            sink.name, exc)  # fmt: skip

    def _write_with_retry(self, sink: Sink, item: Pending, table: pa.Table) -> None:
        """Write until it works: a failing sink (full disk) holds the batch, the queue
        fills, sources stop polling; nothing is skipped. Gives up only on abort or when
        a drain outlasts ``drain_timeout_s`` (then nothing is acked)."""
        span = (item.first, item.last) if item.idempotent else None

        def write() -> WriteResult:
            return sink.write(item.key, table, span)

        errors = self.metrics.sink_errors.labels(sink.name)
        result = self._retrying(f"sink {sink.name}", write, errors.inc)
        self._account(sink, item, result)
        self._count_segments(sink, result.segments)

    def _write_many_with_retry(
        self, sink: WritesMany, items: Sequence[Pending], tables: Sequence[pa.Table]
    ) -> None:
        """One :meth:`WritesMany.write_many` for ``items``, retried whole like a write."""
        batch = [
            SinkItem(item.key, table, (item.first, item.last) if item.idempotent else None)
            for item, table in zip(items, tables, strict=True)
        ]
        name = getattr(sink, "name", type(sink).__name__)

        def write() -> list[WriteResult]:
            results = sink.write_many(batch)
            if len(results) != len(batch):
                raise PipelineError(f"sink {name} returned {len(results)} results for "
                                    f"{len(batch)} items")  # fmt: skip
            return results

        errors = self.metrics.sink_errors.labels(name)
        results = self._retrying(f"sink {name}", write, errors.inc)
        for item, result in zip(items, results, strict=True):
            self._account(sink, item, result)
        self._count_segments(sink, sum(r.segments for r in results))

    def _account(self, sink: Sink | WritesMany, item: Pending, result: WriteResult) -> None:
        """Metrics and stats of one item's write."""
        name = getattr(sink, "name", type(sink).__name__)
        self.metrics.lines_out.labels(item.source, name).inc(result.lines)
        self.metrics.bytes_out.labels(item.source, name).inc(result.bytes)
        for reason, count in result.drops.counts.items():
            self._drop(item.source, reason, count)
        if sink is self.sinks[0]:
            with self._stats_lock:
                self.stats.lines_out += result.lines

    def _count_segments(self, sink: Sink | WritesMany, segments: int) -> None:
        """A write that made files: one flush of ``segments`` files."""
        if segments:
            name = getattr(sink, "name", type(sink).__name__)
            self.metrics.segment_flushes.labels(name).inc()
            self.metrics.segments_written.labels(name).inc(segments)

    def _retrying(self, part: str, call: Callable[[], _T], count_error: Callable[[], None]) -> _T:
        """``call()`` until it works, backing off; ``part`` ("sink store") names the
        failure on the health probe. Gives up only on abort or when a drain outlasts
        ``drain_timeout_s`` (PipelineError; then nothing is acked)."""
        backoff = 0.1
        gave_up_at = None
        while True:
            try:
                result = call()
            except Exception as exc:
                count_error()
                self.health.problem(part, str(exc))
                log.warning("%s: write failed (%s); retrying in %.1f s", part, exc, backoff)
                if self._stopping.is_set():
                    gave_up_at = gave_up_at or time.monotonic() + self.drain_timeout_s
                    if time.monotonic() > gave_up_at or self._abort.is_set():
                        raise PipelineError(f"{part} kept failing: {exc}") from exc
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            self.health.problem(part, None)
            return result
