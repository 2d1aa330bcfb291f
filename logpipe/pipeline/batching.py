"""Batching by size and time: many small chunks become few large store writes.

Why: every store write is an fsync'd segment per stream plus a manifest rewrite, so its
cost is mostly fixed; Kafka hands out a few hundred records per partition per poll. The
batcher holds chunks until ``max_lines`` or ``max_bytes`` are pending or the oldest has
waited ``max_age_s``, then hands them out merged per key (one partition's consecutive
chunks become one offset range, one ``Store.ingest``). Memory stays bounded by the limits
plus one poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

from logpipe.pipeline.api import AckToken, Chunk, Drops

__all__ = ["BatchLimits", "Batcher", "Pending"]


@dataclass(frozen=True)
class BatchLimits:
    """When to flush: whichever comes first."""

    max_lines: int = 50_000
    max_bytes: int = 16 << 20
    max_age_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_bytes < 1 or self.max_age_s <= 0:
            raise ValueError("batch limits must be positive")


@dataclass
class Pending:
    """One key's merged chunks, ready to write: rows, consumed range, newest ack token."""

    source: str
    key: tuple[str, int]
    batches: list[pa.RecordBatch]
    first: int
    last: int
    token: AckToken
    idempotent: bool
    received_ns: int
    drops: Drops = field(default_factory=Drops)
    bytes_in: int = 0

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches)


class Batcher:
    """Accumulates chunks per key; :meth:`due` says when to :meth:`take` them."""

    def __init__(self, limits: BatchLimits | None = None) -> None:
        self.limits = limits or BatchLimits()
        self._pending: dict[tuple[str, tuple[str, int]], Pending] = {}
        self._lines = 0
        self._bytes = 0
        self._oldest: float | None = None

    def add(self, chunk: Chunk, now: float | None = None) -> None:
        """Queue ``chunk`` behind the earlier ones of its key (ranges must be in order)."""
        slot = (chunk.source, chunk.key)
        held = self._pending.get(slot)
        if held is None:
            held = Pending(
                source=chunk.source,
                key=chunk.key,
                batches=[],
                first=chunk.first,
                last=chunk.last,
                token=chunk.token,
                idempotent=chunk.idempotent,
                received_ns=chunk.received_ns,
            )
            self._pending[slot] = held
        elif chunk.first <= held.last:
            raise ValueError(
                f"chunk {chunk.first}..{chunk.last} of {chunk.key} does not follow "
                f"{held.first}..{held.last}"
            )
        if chunk.batch.num_rows:
            held.batches.append(chunk.batch)
        held.last = chunk.last
        held.token = chunk.token
        held.idempotent = held.idempotent and chunk.idempotent
        held.bytes_in += chunk.bytes_in
        for reason, count in chunk.drops.counts.items():
            held.drops.add(reason, count)
        self._lines += chunk.batch.num_rows
        self._bytes += chunk.batch.nbytes
        if self._oldest is None:
            self._oldest = time.monotonic() if now is None else now

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def lines(self) -> int:
        return self._lines

    def due(self, now: float | None = None) -> bool:
        """Whether a limit is reached (nothing pending is never due)."""
        if self._oldest is None:
            return False
        t = time.monotonic() if now is None else now
        return (
            self._lines >= self.limits.max_lines
            or self._bytes >= self.limits.max_bytes
            or t - self._oldest >= self.limits.max_age_s
        )

    def wait_s(self, now: float | None = None) -> float | None:
        """Seconds until the age limit makes a flush due (None: nothing pending)."""
        if self._oldest is None:
            return None
        t = time.monotonic() if now is None else now
        return max(0.0, self._oldest + self.limits.max_age_s - t)

    def take(self) -> list[Pending]:
        """Everything pending, one entry per key, and start afresh."""
        out = list(self._pending.values())
        self._pending.clear()
        self._lines = self._bytes = 0
        self._oldest = None
        return out
