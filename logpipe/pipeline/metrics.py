"""Prometheus metrics of one pipeline, in a registry of its own.

Why a registry per pipeline instead of prometheus-client's global one: two pipelines in
one process (tests, a daemon with a file and a Kafka pipeline) would otherwise collide on
registration, and global state is what DESIGN.md asks us to avoid. The daemon serves
``generate_latest(pipeline.metrics.registry)`` on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["DetectMetrics", "PipelineMetrics"]

#: Scoring latency buckets: a batch of windows scores in milliseconds on CPU normally.
_SCORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Batch latency buckets: a flush is sub-second normally, seconds when the disk is slow.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PipelineMetrics:
    """The pipeline's counters, gauges and histograms (names are ``logpipe_*``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lines_in = Counter(
            "logpipe_source_lines", "Lines read from a source.", ["source"], registry=r
        )
        self.bytes_in = Counter(
            "logpipe_source_bytes", "Payload bytes read from a source.", ["source"], registry=r
        )
        self.lines_out = Counter(
            "logpipe_sink_lines",
            "Lines durably written by a sink, by the source they came from.",
            ["source", "sink"],
            registry=r,
        )
        self.bytes_out = Counter(
            "logpipe_sink_bytes",
            "Line bytes durably written by a sink, by the source they came from.",
            ["source", "sink"],
            registry=r,
        )
        self.dropped = Counter(
            "logpipe_dropped_lines",
            "Lines dropped, by source and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.truncated = Counter(
            "logpipe_truncated_lines",
            "Lines stored truncated to the line size limit.",
            ["source"],
            registry=r,
        )
        self.lag = Gauge(
            "logpipe_consumer_lag",
            "Records between the consumer's position and the partition's end.",
            ["source", "topic", "partition"],
            registry=r,
        )
        self.batch_latency = Histogram(
            "logpipe_batch_latency_seconds",
            "From a batch's first record arriving to the batch being durable and acked.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.flush_seconds = Histogram(
            "logpipe_flush_seconds",
            "Time to write one flushed batch to every sink.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.segment_flushes = Counter(
            "logpipe_segment_flushes",
            "Store writes (each one atomic: segments, then the manifest).",
            ["sink"],
            registry=r,
        )
        self.segments_written = Counter(
            "logpipe_segments_written", "Store segment files written.", ["sink"], registry=r
        )
        self.sink_errors = Counter(
            "logpipe_sink_errors",
            "Failed sink writes (retried: the batch is kept until it is written).",
            ["sink"],
            registry=r,
        )
        self.stage_errors = Counter(
            "logpipe_stage_errors",
            "Failed stage checkpoints (retried: the flush is not acknowledged until one works).",
            ["stage"],
            registry=r,
        )
        self.source_errors = Counter(
            "logpipe_source_errors",
            "Transient source failures (broker unreachable, commit failed), retried.",
            ["source", "kind"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "logpipe_queue_chunks", "Chunks waiting between sources and the writer.", registry=r
        )
        self.ready = Gauge("logpipe_ready", "1 when the pipeline is ready.", registry=r)
        self.live = Gauge("logpipe_live", "1 while the pipeline's threads run.", registry=r)

    def exposition(self) -> bytes:
        """The text format for ``/metrics``."""
        return generate_latest(self.registry)


class DetectMetrics:
    """The online detection stage's and the alert sinks' metrics (``logpipe_detect_*``,
    ``logpipe_alert*``), registered in the pipeline's registry so ``/metrics`` has them.

    Drops here are *detection* drops (an event left out of a window, a window not scored);
    the archive never loses a line to detection, so they are not ``logpipe_dropped_lines``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "logpipe_detect_events", "Events added to detection windows.", registry=r
        )
        self.truncated_events = Counter(
            "logpipe_detect_truncated_events",
            "Events whose text was cut to detect.max_event_bytes.",
            registry=r,
        )
        self.dropped_events = Counter(
            "logpipe_detect_dropped_events",
            "Events left out of detection, by reason (window_full, late, no_session_key, "
            "window_evicted, future_timestamp); the archive keeps them.",
            ["reason"],
            registry=r,
        )
        self.dropped_windows = Counter(
            "logpipe_detect_dropped_windows",
            "Windows not scored, by reason (max_open_windows, queue_full, score_error, shutdown).",
            ["reason"],
            registry=r,
        )
        self.open_windows = Gauge(
            "logpipe_detect_open_windows", "Windows being filled now.", registry=r
        )
        self.windows_scored = Counter(
            "logpipe_detect_windows_scored", "Windows scored by the detector.", registry=r
        )
        self.anomalies = Counter(
            "logpipe_detect_anomalies",
            "Windows scored above the detector's threshold.",
            registry=r,
        )
        self.score_seconds = Histogram(
            "logpipe_detect_score_seconds",
            "Time to score one batch of closed windows (detector.explain).",
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "logpipe_detect_errors",
            "Unexpected failures inside the detection stage, by step (convert, score); "
            "the batch still passes through to the archive.",
            ["step"],
            registry=r,
        )
        self.alerts_sent = Counter(
            "logpipe_alerts_sent", "Alerts delivered, by sink.", ["sink"], registry=r
        )
        self.alert_failures = Counter(
            "logpipe_alert_send_failures",
            "Alerts not delivered, by sink and reason (connection, timeout, http_5xx, "
            "http_4xx, kafka, queue_full, cancelled, closed, error).",
            ["sink", "reason"],
            registry=r,
        )
        self.alert_retries = Counter(
            "logpipe_alert_retries",
            "Delivery attempts after the first, by sink.",
            ["sink"],
            registry=r,
        )
        self.alert_queue = Gauge(
            "logpipe_alert_queue",
            "Alerts waiting for their sink, by sink.",
            ["sink"],
            registry=r,
        )
