"""Fan alerts out to their sinks, one thread and one bounded queue per sink.

Why a thread per sink: delivery blocks (timeouts, retries with backoff), and the
detection stage must never wait on a receiver. :meth:`AlertDispatcher.submit` only puts
the alert on each sink's queue; when a queue is full (its receiver has been down long
enough to fill it) the alert is counted as failed with reason ``queue_full`` for that
sink and the others still get it. Every outcome lands in :class:`DetectMetrics`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

from logpipe.detect.alert import Alert, AlertSink
from logpipe.errors import AlertDeliveryError
from logpipe.pipeline.metrics import DetectMetrics

__all__ = ["AlertDispatcher"]

log = logging.getLogger(__name__)

_POLL_S = 0.1


class _Lane:
    """One sink, its queue, its thread, and how many alerts it has not finished."""

    def __init__(self, sink: AlertSink, capacity: int, metrics: DetectMetrics) -> None:
        self.sink = sink
        self.queue: queue.Queue[Alert] = queue.Queue(capacity)
        self.metrics = metrics
        self.pending = 0  # submitted and not yet delivered or failed
        self.idle = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"logpipe-alerts-{sink.name}", daemon=True
        )

    def submit(self, alert: Alert) -> None:
        with self.idle:
            try:
                self.queue.put_nowait(alert)
            except queue.Full:
                self.metrics.alert_failures.labels(self.sink.name, "queue_full").inc()
                log.warning(
                    "alert sink %s: queue full, alert %s not sent", self.sink.name, alert.key
                )
                return
            self.pending += 1
        self.metrics.alert_queue.labels(self.sink.name).set(self.queue.qsize())

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    first = self.queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                batch = [first]
                while len(batch) < max(1, self.sink.max_batch):
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                self._deliver(batch)
        finally:
            self.close_sink()

    def close_sink(self) -> None:
        try:
            self.sink.close()
        except Exception:  # a failing close must not hide what came before
            log.exception("alert sink %s: close failed", self.sink.name)

    def _deliver(self, batch: Sequence[Alert]) -> None:
        name = self.sink.name
        try:
            attempts = self.sink.send(batch)
        except AlertDeliveryError as exc:
            self.metrics.alert_failures.labels(name, exc.reason).inc(len(batch))
            self.metrics.alert_retries.labels(name).inc(max(0, exc.attempts - 1))
            log.warning("%s (%d alert(s) not sent)", exc, len(batch))
        except Exception:  # a sink bug must not kill delivery for good
            self.metrics.alert_failures.labels(name, "error").inc(len(batch))
            log.exception("alert sink %s failed unexpectedly (%d alert(s))", name, len(batch))
        else:
            self.metrics.alerts_sent.labels(name).inc(len(batch))
            self.metrics.alert_retries.labels(name).inc(max(0, attempts - len(batch)))
        finally:
            with self.idle:
                self.pending -= len(batch)
                self.idle.notify_all()
            self.metrics.alert_queue.labels(name).set(self.queue.qsize())

    def wait_idle(self, deadline: float) -> bool:
        with self.idle:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.idle.wait(min(left, _POLL_S))
            return True


class AlertDispatcher:
    """Sends every submitted alert to every sink, asynchronously; see the module docstring."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        metrics: DetectMetrics | None = None,
        *,
        queue_alerts: int = 1000,
    ) -> None:
        if queue_alerts < 1:
            raise ValueError("queue_alerts must be positive")
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"alert sink names must be unique: {names}")
        self.metrics = metrics if metrics is not None else DetectMetrics()
        self._lanes = [_Lane(s, queue_alerts, self.metrics) for s in sinks]
        self._started = False
        self._closed = False
        self._lock = threading.Lock()

    @property
    def sink_names(self) -> list[str]:
        return [lane.sink.name for lane in self._lanes]

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                for lane in self._lanes:
                    lane.thread.start()

    def submit(self, alert: Alert) -> None:
        """Queue ``alert`` for every sink; never blocks."""
        self.start()
        if self._closed:
            for lane in self._lanes:
                self.metrics.alert_failures.labels(lane.sink.name, "closed").inc()
            return
        for lane in self._lanes:
            lane.submit(alert)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued alert was delivered or failed; False on timeout."""
        deadline = time.monotonic() + timeout_s
        return all([lane.wait_idle(deadline) for lane in self._lanes])

    def close(self, timeout_s: float) -> None:
        """Deliver what is queued within ``timeout_s``, then cancel retries and stop;
        alerts still queued then are counted as failed (``cancelled``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        deadline = time.monotonic() + timeout_s
        if started:
            self.flush(timeout_s)
        for lane in self._lanes:
            lane.stop.set()
            lane.sink.cancel()
        for lane in self._lanes:
            if started:
                lane.thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
            else:
                lane.close_sink()
            left = 0
            while True:
                try:
                    lane.queue.get_nowait()
                except queue.Empty:
                    break
                left += 1
            if left:
                self.metrics.alert_failures.labels(lane.sink.name, "cancelled").inc(left)
