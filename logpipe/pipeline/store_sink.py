"""The store as a sink: one atomic, idempotent ``Store.ingest_batch`` per key and flush.

Why per key: the store records one offset range per write (``position``), and a Kafka
partition is the unit whose offsets are ordered. Recording the range in the same atomic
manifest update as the segments is what makes "commit after durable write" exactly-once
in effect: a crash after the write but before the Kafka commit redelivers a range the
store already holds, and this sink drops it (trimming a partly stored one) instead of
storing it twice.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.pipeline.api import Drops, WriteResult
from logpipe.store import DEFAULT_TENANT, Store

__all__ = ["StoreSink"]


class StoreSink:
    """Writes LogBatches of one tenant into ``store``. Multi-line entries (a joined
    stack trace, a Kafka message holding several lines) are stored whole."""

    def __init__(
        self,
        store: Store,
        tenant: str = DEFAULT_TENANT,
        *,
        name: str = "store",
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.name = name

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        """The last offset of ``key`` the store holds (None: never written)."""
        return self.store.manifest(self.tenant).offsets.get(key)

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        result = WriteResult()
        position = None
        if span is not None:
            first, last = span
            done = self.resume_offset(key)
            if done is not None and done >= first:
                if done >= last:
                    result.duplicate = True
                    return result
                table = table.filter(pc.greater(table.column("offset"), done))
                first = done + 1
            position = (key[0], key[1], first, last)
        report = self.store.ingest_batch(self.tenant, table, position=position)
        result.duplicate = report.duplicate
        result.lines = report.accepted
        result.segments = len(report.segments)
        result.bytes = int(pc.sum(pc.binary_length(table.column("line"))).as_py() or 0)
        result.drops = Drops(dict(report.rejected))
        return result

    def close(self) -> None:
        """Nothing to release: every write is complete when it returns."""
