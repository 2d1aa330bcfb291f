"""The streaming pipeline: sources → stages → sinks over LogBatches (DESIGN.md §2).

Modules, one job each: ``api`` (the Source/Stage/Sink contracts and the Chunk a source
emits), ``batching`` (flush by size and age), ``runner`` (threads, backpressure, drain,
acks), ``store_sink`` (the store as an idempotent sink), ``stages`` (small stages),
``parse_stage`` (online template mining), ``metrics`` (Prometheus), ``health``
(live/ready). Sources live in ``logpipe.connectors``.

A daemon builds one :class:`Pipeline` and calls :meth:`Pipeline.run` (blocks, drains on
SIGTERM/SIGINT) or :meth:`Pipeline.start` / :meth:`Pipeline.stop` / :meth:`Pipeline.join`.
"""

from __future__ import annotations

from logpipe.pipeline.api import (
    AckToken,
    Checkpoints,
    Chunk,
    CountsDrops,
    DrainFn,
    Drops,
    Maintains,
    ResumeFn,
    Sink,
    SinkItem,
    Source,
    Stage,
    WriteResult,
    WritesMany,
)
from logpipe.pipeline.batching import Batcher, BatchLimits
from logpipe.pipeline.health import Health, HealthSnapshot
from logpipe.pipeline.metrics import PipelineMetrics
from logpipe.pipeline.parse_stage import PARSE_COLUMNS, ParseStage
from logpipe.pipeline.runner import Pipeline, PipelineStats
from logpipe.pipeline.stages import DetectTimestamps, LineLimit
from logpipe.pipeline.store_sink import StoreSink

__all__ = [
    "PARSE_COLUMNS",
    "AckToken",
    "BatchLimits",
    "Batcher",
    "Checkpoints",
    "Chunk",
    "CountsDrops",
    "DetectTimestamps",
    "DrainFn",
    "Drops",
    "Health",
    "HealthSnapshot",
    "LineLimit",
    "Maintains",
    "ParseStage",
    "Pipeline",
    "PipelineMetrics",
    "PipelineStats",
    "ResumeFn",
    "Sink",
    "SinkItem",
    "Source",
    "Stage",
    "StoreSink",
    "WriteResult",
    "WritesMany",
]
