"""The online detection stage: batches → windows → detector → alerts, beside the archive.

Data flow (threads)::

    stage thread:  process(batch) ──> events ──> WindowBuilder ──> closed windows
                   returns the batch unchanged                          │ bounded queue
    scorer thread: batches of closed windows ──> detector.explain ──> anomalous?
                   (also closes idle windows every tick_secs)           │
    alert threads: AlertDispatcher, one per sink (timeouts, retries) <──┘

Why this shape: the pipeline's stage thread feeds the archive's only writer, so detection
must cost it no more than building windows. Scoring (a GNN on a CPU) and delivery (a
receiver that times out) run on their own threads behind bounded queues; when they fall
behind, windows or alerts are dropped and counted, and the archive never waits.

The stage contract (:class:`logpipe.pipeline.api.Stage`): :meth:`DetectStage.process`
returns the batch it was given, always; a failure inside detection is logged and counted
(``logpipe_detect_errors_total``), never raised, because a raising stage makes the runner
drop the batch's rows. Detection drops are counted in ``logpipe_detect_dropped_*``, not in
``logpipe_dropped_lines``: no line is dropped from the archive.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from logpipe.detect.alert import Alert, AlertSink, query_url, window_query
from logpipe.detect.batch_events import batch_events
from logpipe.detect.dispatch import AlertDispatcher
from logpipe.detect.online import ClosedWindow, WindowBuilder, WindowCounts
from logpipe.detect.windows import ExplainingDetector, WindowScore
from logpipe.labels import LabelError, parse_labels
from logpipe.pipeline.metrics import DetectMetrics

__all__ = ["DetectSettings", "DetectStage", "alert_for"]

log = logging.getLogger(__name__)

#: Events stamped further than this past the wall clock are left out (counted as
#: ``future_timestamp``): event time only moves forward, so one line from a clock set
#: far ahead would otherwise make every later line of its stream look late.
_MAX_FUTURE_NS = 300 * 1_000_000_000


@dataclass(frozen=True)
class DetectSettings:
    """How windows are built and bounded and how scoring is paced (``[detect]`` config).

    Exactly one of ``window_secs`` and ``session_key``. ``api_url`` is the base of the
    query links in alerts (empty: no links).
    """

    window_secs: float | None = 60.0
    session_key: str | None = None
    idle_secs: float = 30.0
    max_open_windows: int = 10_000
    max_events_per_window: int = 2_000
    max_event_bytes: int = 4096
    queue_windows: int = 1024
    score_batch_windows: int = 64
    queue_alerts: int = 1000
    top_edges: int = 5
    api_url: str = ""
    drain_timeout_secs: float = 10.0
    tick_secs: float = 0.5


def alert_for(closed: ClosedWindow, score: WindowScore, detector: str, api_url: str) -> Alert:
    """The alert about one anomalous window (pure)."""
    try:
        labels = parse_labels(closed.labels)
    except LabelError:
        labels = {}
    w = closed.window
    query = window_query(labels, closed.kind, w.key)
    return Alert(
        score=score,
        detector=detector,
        kind=closed.kind,
        labels=labels,
        events=len(w.events),
        dropped=w.dropped,
        query=query,
        url=query_url(api_url, query, w.start_ns, w.end_ns),
    )


class _Stop:
    """Queue item: the scorer thread exits."""


class DetectStage:
    """A pipeline stage scoring windows online and alerting (module docstring).

    ``clock`` (monotonic seconds) and ``now_ns`` (wall clock, for rows without a time)
    are injectable for tests. Threads start on the first batch.
    """

    def __init__(
        self,
        detector: ExplainingDetector,
        sinks: Sequence[AlertSink],
        settings: DetectSettings | None = None,
        *,
        metrics: DetectMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = s = settings or DetectSettings()
        self.detector = detector
        self.metrics = metrics if metrics is not None else DetectMetrics()
        self.windows = WindowBuilder(
            window_secs=s.window_secs if s.session_key is None else None,
            session_key=s.session_key,
            idle_secs=s.idle_secs,
            max_open_windows=s.max_open_windows,
            max_events_per_window=s.max_events_per_window,
            clock=clock,
        )
        self.dispatcher = AlertDispatcher(sinks, self.metrics, queue_alerts=s.queue_alerts)
        self._clock = clock
        self._now_ns = now_ns
        self._lock = threading.Lock()  # the window builder: stage thread vs scorer's tick
        self._queue: queue.Queue[ClosedWindow | _Stop] = queue.Queue(s.queue_windows)
        self._pending = 0  # windows queued and not yet scored
        self._idle = threading.Condition()
        self._scorer = threading.Thread(target=self._score_loop, name="logpipe-detect", daemon=True)
        self._started = False
        self._closed = False
        self._next_tick = clock() + s.tick_secs

    # -- the Stage contract ---------------------------------------------------------------

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Feed ``batch``'s rows to the windows; return ``batch`` itself, always."""
        try:
            self._start()
            self._ingest(batch)
        except Exception:  # detection must never cost the archive a line
            self.metrics.errors.labels("convert").inc()
            log.exception("detect: could not take a batch of %d lines", batch.num_rows)
        return batch

    def flush(self) -> None:
        """Close every open window, score it, and deliver the alerts, within
        ``drain_timeout_secs`` (what the runner calls when the pipeline drains)."""
        if self._closed:
            return
        self._start()
        deadline = time.monotonic() + self.settings.drain_timeout_secs
        with self._lock:
            closed = self.windows.close_all()
            self._account(self.windows.take_counts())
        for window in closed:
            self._offer(window, deadline)
        self._wait_scored(deadline)
        self.dispatcher.flush(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop the threads; windows not scored yet are counted (``shutdown``)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.settings.drain_timeout_secs
        if self._started:
            self._put_stop(deadline)
            self._scorer.join(max(0.0, deadline - time.monotonic()))
        left = len(self.windows)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            left += isinstance(item, ClosedWindow)
        if left:
            self.metrics.dropped_windows.labels("shutdown").inc(left)
        self.dispatcher.close(max(0.0, deadline - time.monotonic()))

    # -- stage thread -----------------------------------------------------------------------

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._scorer.start()
            self.dispatcher.start()

    def _ingest(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        now_ns = self._now_ns()
        converted = batch_events(batch, max_text_bytes=self.settings.max_event_bytes,
                                 now_ns=now_ns)  # fmt: skip
        if converted.truncated:
            self.metrics.truncated_events.inc(converted.truncated)
        horizon = now_ns + _MAX_FUTURE_NS
        closed: list[ClosedWindow] = []
        future = 0
        with self._lock:
            add = self.windows.add
            for row in converted.rows:
                if row.event.ts_ns > horizon:
                    future += 1
                    continue
                closed += add(row.labels, row.text, row.event)
            counts = self.windows.take_counts()
            self.metrics.open_windows.set(len(self.windows))
        self._account(counts)
        if future:
            self.metrics.dropped_events.labels("future_timestamp").inc(future)
        for window in closed:
            self._offer(window, None)

    def _account(self, counts: WindowCounts) -> None:
        self.metrics.events.inc(counts.added)
        for reason, count in counts.events.items():
            self.metrics.dropped_events.labels(reason).inc(count)
        for reason, count in counts.windows.items():
            self.metrics.dropped_windows.labels(reason).inc(count)

    def _offer(self, window: ClosedWindow, deadline: float | None) -> None:
        """Queue a closed window for scoring: without a deadline never blocks (a full
        queue drops it, counted); with one, waits until then (a flush)."""
        with self._idle:
            self._pending += 1
        try:
            if deadline is None:
                self._queue.put_nowait(window)
            else:
                self._queue.put(window, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            self.metrics.dropped_windows.labels("queue_full").inc()
            self._scored(1)

    def _put_stop(self, deadline: float) -> None:
        try:
            self._queue.put(_Stop(), timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            log.warning("detect: scorer queue still full at shutdown")

    def _wait_scored(self, deadline: float) -> bool:
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._scorer.is_alive():
                    return False
                self._idle.wait(min(left, 0.1))
            return True

    def _scored(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            self._idle.notify_all()

    # -- scorer thread ----------------------------------------------------------------------

    def _score_loop(self) -> None:
        s = self.settings
        while True:
            try:
                item = self._queue.get(timeout=s.tick_secs)
            except queue.Empty:
                item = None
            if isinstance(item, _Stop):
                return
            batch = [item] if item is not None else []
            while len(batch) < s.score_batch_windows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(nxt, _Stop):
                    self._score(batch)
                    return
                batch.append(nxt)
            if batch:
                self._score(batch)
            self._tick()

    def _tick(self) -> None:
        """Close windows of quiet streams (their wall-clock deadline passed)."""
        now = self._clock()
        if now < self._next_tick:
            return
        self._next_tick = now + self.settings.tick_secs
        with self._lock:
            expired = self.windows.expire()
            self._account(self.windows.take_counts())
            self.metrics.open_windows.set(len(self.windows))
        for window in expired:
            self._offer(window, None)

    def _score(self, batch: list[ClosedWindow]) -> None:
        windows = [c.window for c in batch]
        started = time.perf_counter()
        try:
            scores = self.detector.explain(windows, self.settings.top_edges)
            if len(scores) != len(windows):
                raise ValueError(
                    f"explain returned {len(scores)} scores for {len(windows)} windows"
                )
        except Exception:  # a detector failure costs these windows, not the stream
            self.metrics.errors.labels("score").inc()
            self.metrics.dropped_windows.labels("score_error").inc(len(batch))
            log.exception("detect: scoring %d windows failed", len(batch))
            self._scored(len(batch))
            return
        finally:
            self.metrics.score_seconds.observe(time.perf_counter() - started)
        self.metrics.windows_scored.inc(len(batch))
        name = getattr(self.detector, "name", type(self.detector).__name__)
        for closed, score in zip(batch, scores, strict=True):
            if score.anomalous:
                self.metrics.anomalies.inc()
                alert = alert_for(closed, score, name, self.settings.api_url)
                log.warning("anomaly: %s", alert.summary(), extra={"key": alert.key})
                self.dispatcher.submit(alert)
        self._scored(len(batch))
