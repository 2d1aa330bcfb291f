"""Prometheus metrics of one pipeline, in a registry of its own.

Why a registry per pipeline instead of prometheus-client's global one: two pipelines in
one process (tests, a daemon with a file and a Kafka pipeline) would otherwise collide on
registration, and global state is what DESIGN.md asks us to avoid. The daemon serves
``generate_latest(pipeline.metrics.registry)`` on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["PipelineMetrics"]

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
