"""Loki pushes as a pipeline source: ``POST /loki/api/v1/push`` to a running daemon.

Why pushes go through the pipeline instead of straight into the store: so they get the
same stages (template ids), metrics (``logpipe_source_lines_total{source="push"}``) and
sinks (a Kafka output topic) as every other source, and so one writer thread owns the
store.

Flow: the HTTP handler decodes the body and :meth:`PushSource.submit` queues it (bounded
by ``max_queued_bytes`` of line bytes: a full queue is refused at once, 429, rather than
buffered without limit); :meth:`PushSource.poll` hands queued pushes to the runner as
chunks, one per push, numbered in arrival order; when the runner acknowledges a number
(every sink wrote it), the pushes up to it are answered 204. A push still queued when its
request times out is withdrawn (503, never stored); one already in the pipeline is
answered when it is written. At shutdown the drain writes what was taken, and what is
still queued is answered 503 so the client sends it again (to this daemon after its
restart, or another one). Push rows carry their tenant in a ``tenant`` column.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from logpipe.pipeline.api import AckToken, Chunk, DrainFn, ResumeFn
from logpipe.pipeline.store_sink import TENANT_COLUMN
from logpipe.records import raw_batch
from logpipe.server.pushqueue import PushBusyError, PushDone, PushUnavailableError

__all__ = ["PushSource"]

_TENANT_TYPE = pa.dictionary(pa.int32(), pa.string())


@dataclass
class _Push:
    seq: int
    tenant: str
    table: pa.Table
    nbytes: int
    done: PushDone
    received_ns: int
    state: str = "queued"  # queued -> taken -> answered; or cancelled


class PushSource:
    """A :class:`~logpipe.pipeline.api.Source` fed by the push route (module docstring)."""

    def __init__(self, *, name: str = "push", max_queued_bytes: int = 64 << 20) -> None:
        if max_queued_bytes < 1:
            raise ValueError("max_queued_bytes must be positive")
        self.name = name
        self.max_queued_bytes = max_queued_bytes
        self._cond = threading.Condition()
        self._queued: deque[_Push] = deque()
        self._taken: deque[_Push] = deque()
        self._queued_bytes = 0
        self._next_seq = 0
        self._open = False

    # -- the HTTP side ------------------------------------------------------------------

    def submit(self, tenant: str, table: pa.Table, done: PushDone) -> object:
        import time  # noqa: PLC0415 - monotonic_ns only

        nbytes = int(table.column("line").nbytes) if table.num_rows else 0
        with self._cond:
            if not self._open:
                raise PushUnavailableError("the pipeline is not running; retry shortly")
            if self._queued and self._queued_bytes + nbytes > self.max_queued_bytes:
                raise PushBusyError(
                    f"push queue full ({self._queued_bytes} of {self.max_queued_bytes} "
                    "bytes waiting for the store)"
                )
            push = _Push(self._next_seq, tenant, table, nbytes, done, time.monotonic_ns())
            self._next_seq += 1
            self._queued.append(push)
            self._queued_bytes += nbytes
            self._cond.notify()
        return push

    def cancel(self, ticket: object) -> bool:
        with self._cond:
            if not isinstance(ticket, _Push) or ticket.state != "queued":
                return False
            self._queued.remove(ticket)
            self._queued_bytes -= ticket.nbytes
            ticket.state = "cancelled"
            return True

    @property
    def queued_bytes(self) -> int:
        with self._cond:
            return self._queued_bytes

    # -- Source protocol ----------------------------------------------------------------

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        del drain, resume  # positions are per process: nothing to resume
        with self._cond:
            self._open = True

    def poll(self, timeout_s: float) -> list[Chunk]:
        with self._cond:
            if not self._queued:
                self._cond.wait(timeout_s)
            taken = list(self._queued)
            self._queued.clear()
            self._queued_bytes = 0
            for push in taken:
                push.state = "taken"
            self._taken.extend(taken)
        return [self._chunk(p) for p in taken]

    def _chunk(self, push: _Push) -> Chunk:
        table = push.table
        n = table.num_rows
        batch = raw_batch(
            table.column("line").combine_chunks().cast(pa.binary()),
            source=self.name,
            offsets=np.zeros(n, dtype=np.int64),
            labels=table.column("labels").combine_chunks(),
            ts=table.column("ts").combine_chunks(),
        )
        tenant = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([push.tenant], pa.string())
        )
        batch = batch.append_column(pa.field(TENANT_COLUMN, _TENANT_TYPE, nullable=False), tenant)
        return Chunk(
            source=self.name,
            key=(self.name, 0),
            batch=batch,
            first=push.seq,
            last=push.seq,
            token=push.seq,
            received_ns=push.received_ns,
            bytes_in=push.nbytes,
        )

    def ack(self, tokens: Sequence[AckToken]) -> None:
        last = max((t for t in tokens if isinstance(t, int)), default=None)
        if last is None:
            return
        answered = []
        with self._cond:
            while self._taken and self._taken[0].seq <= last:
                push = self._taken.popleft()
                push.state = "answered"
                answered.append(push)
        for push in answered:
            push.done(None)

    def commit(self) -> None:
        """Nothing to commit: a push is answered when it is written."""

    def close(self) -> None:
        """Refuse new pushes; answer every one not written (503: send it again)."""
        with self._cond:
            self._open = False
            left = [*self._taken, *self._queued]
            self._taken.clear()
            self._queued.clear()
            self._queued_bytes = 0
            for push in left:
                push.state = "answered"
        for push in left:
            push.done("the daemon is stopping and did not store this push; send it again")

    def lag(self) -> dict[tuple[str, int], int]:
        """Pushes waiting to be taken into the pipeline."""
        with self._cond:
            return {(self.name, 0): len(self._queued)}
