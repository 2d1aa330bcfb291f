"""The contracts between the runner and its parts: sources, stages, sinks, and chunks.

Why protocols and a chunk type rather than a class hierarchy: a source (Kafka, a tailed
file) and a sink (the store, an output topic) have nothing in common but how the runner
talks to them, and a test can pass a ten-line fake of each. The runner owns threads and
queues; the parts own only their own I/O.

Threads: a source's :meth:`Source.poll`, :meth:`Source.commit` and :meth:`Source.close`
run on that source's own thread (a Kafka consumer is not thread-safe); :meth:`Source.ack`
is called from the writer thread and must only record what to commit. Stages run on the
stage thread, one chunk at a time in order (``flush``/``close`` too); sinks and
:meth:`Checkpoints.checkpoint` run on the writer thread, so a checkpointing stage guards
its state against its own ``process``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import pyarrow as pa

__all__ = [
    "AckToken",
    "Checkpoints",
    "Chunk",
    "CountsDrops",
    "DrainFn",
    "Drops",
    "Maintains",
    "ResumeFn",
    "Sink",
    "SinkItem",
    "Source",
    "Stage",
    "WriteResult",
    "WritesMany",
]

#: Opaque to the runner: what a source needs to commit a chunk (a Kafka offset, a file
#: position). The runner hands back the token of the *last* chunk written per key.
AckToken = object

#: Given to a source by the runner: blocks until every chunk the source has emitted so far
#: is durably written and acked (or ``timeout_s`` passes; False then). A Kafka source calls
#: it before its partitions are revoked, so it can commit them first.
DrainFn = Callable[[float], bool]

#: Given to a source by the runner: the last offset of a key (topic, partition) that every
#: offset-recording sink holds durably, or None. A Kafka source seeks past it on assignment.
ResumeFn = Callable[[tuple[str, int]], int | None]


@dataclass
class Drops:
    """Lines a part dropped, by reason (``invalid_json``, ``line_too_long``...).

    Every drop has a reason and ends up in ``logpipe_dropped_lines_total``: a line is
    never lost silently.
    """

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, count: int = 1) -> None:
        if count:
            self.counts[reason] = self.counts.get(reason, 0) + count

    def __bool__(self) -> bool:
        return bool(self.counts)


@dataclass
class WriteResult:
    """What one sink write did: lines and line bytes kept, files written, drops.

    When one write stores several items (:class:`WritesMany`), each file it wrote is
    counted in ``segments`` of exactly one of their results.
    """

    lines: int = 0
    bytes: int = 0
    segments: int = 0
    duplicate: bool = False
    drops: Drops = field(default_factory=Drops)


@dataclass
class Chunk:
    """What a source emits: one LogBatch of one key (a Kafka partition, a file).

    ``first``/``last`` (inclusive) is the position range the chunk *consumed*, which may
    be wider than its rows (dropped records still advance the offset, so they are not
    redelivered forever). ``idempotent``: the range is a stable Kafka-style offset range
    that the store may record (``Store.ingest(position=...)``) to make redelivery a no-op;
    file byte offsets are not (rotation restarts them), so files say False.
    ``received_ns``: ``time.monotonic_ns()`` when the records arrived (batch latency);
    ``truncated``: lines kept but cut to the source's line size limit.
    """

    source: str
    key: tuple[str, int]
    batch: pa.RecordBatch
    first: int
    last: int
    token: AckToken
    idempotent: bool = False
    drops: Drops = field(default_factory=Drops)
    received_ns: int = 0
    bytes_in: int = 0
    truncated: int = 0


@runtime_checkable
class Source(Protocol):
    """A producer of chunks; see the module docstring for which thread calls what."""

    name: str

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        """Connect (on the source thread); ``drain``/``resume`` are for rebalances."""

    def poll(self, timeout_s: float) -> Sequence[Chunk]:
        """The next chunks, waiting at most ``timeout_s``; empty when there are none.

        Raise only for failures that should stop the source; transient ones (a broker
        restart) are retried inside and reported through metrics.
        """

    def ack(self, tokens: Sequence[AckToken]) -> None:
        """Record that chunks up to these tokens are durable (thread-safe, no I/O)."""

    def commit(self) -> None:
        """Commit what was acked (source thread)."""

    def close(self) -> None:
        """Commit what was acked and disconnect (source thread)."""

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the end, per key (Kafka consumer lag); empty when unknown."""


@runtime_checkable
class Stage(Protocol):
    """A transformation of LogBatches: pure on its input, bounded state.

    A per-line failure becomes data (an ``error`` value), never an exception: a raising
    stage is a bug, and the runner stops rather than skip lines silently. ``process`` may
    return fewer rows when it drops some; it then also implements :class:`CountsDrops`.
    It keeps the ``source``/``partition``/``offset`` columns of the rows it returns.
    """

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class CountsDrops(Protocol):
    """A stage that drops lines says why: the runner collects these after each batch."""

    def take_drops(self) -> dict[str, int]:
        """Drops by reason since the last call (and reset)."""


@runtime_checkable
class Checkpoints(Protocol):
    """A stage whose state must be durable before the lines it has seen are acknowledged
    (the parse stage's template ids). The runner calls :meth:`checkpoint` after the sinks
    wrote a flush and before its acks, and retries it like a failing sink write."""

    def checkpoint(self) -> None:
        """Make the state durable (no-op when nothing changed); raise OSError on failure."""


@runtime_checkable
class Sink(Protocol):
    """Where batches end up. :meth:`write` returns only when the batch is durable (or
    raises, and the runner retries the same batch): acks follow it."""

    name: str

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        """The last offset of ``key`` this sink holds durably, if it records them."""

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        """Write ``table`` (rows of ``key``); ``span`` is (first, last) when idempotent."""

    def close(self) -> None: ...


class SinkItem(NamedTuple):
    """One key's rows of a flush, as :meth:`WritesMany.write_many` gets them."""

    key: tuple[str, int]
    table: pa.Table
    span: tuple[int, int] | None


@runtime_checkable
class WritesMany(Protocol):
    """A sink that writes all of one source's keys of a flush in one call.

    Why: the store writes one segment per stream and write, plus a manifest update, so
    a flush written key by key (one Kafka partition at a time) made a segment per
    partition and stream. :meth:`write_many` returns when every item is durable, with one
    result per item in order; when it raises, the runner retries the whole call, so it
    must not leave some items stored unless storing them again is a no-op (the store's
    recorded offset ranges make it one).
    """

    def write_many(self, items: Sequence[SinkItem]) -> list[WriteResult]: ...


@runtime_checkable
class Maintains(Protocol):
    """A sink with upkeep to do between flushes (the store merges small segments).

    The runner calls :meth:`maintain` on the writer thread after each flush is acked, so
    the upkeep never delays a commit and never runs beside a write: its memory peaks do
    not add up with a flush's (a merge on a thread of its own cost about 50 MiB more
    RSS in a measured run). It should do a bounded amount of work per call; an exception
    is logged and counted as a sink error, never a reason to stop.
    """

    def maintain(self) -> None: ...
