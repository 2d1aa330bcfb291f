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

__all__ = ["TENANT_COLUMN", "StoreSink"]

#: Rows that carry their own tenant (pushes with ``X-Scope-OrgID``) name it in this column.
TENANT_COLUMN = "tenant"


class StoreSink:
    """Writes LogBatches into ``store``, as ``tenant`` unless the rows carry a ``tenant``
    column (pushes). Multi-line entries (a joined stack trace, a Kafka message holding
    several lines) are stored whole."""

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
        if TENANT_COLUMN in table.schema.names:
            return self._write_tenants(table)
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

    def _write_tenants(self, table: pa.Table) -> WriteResult:
        """Rows that name their tenant (pushes; never offset-recorded): one ingest per
        tenant. Not atomic across tenants: a retry after a failure between two writes
        stores the first tenant's rows again (at-least-once, as a push retried by its
        client is)."""
        result = WriteResult()
        column = table.column(TENANT_COLUMN).cast(pa.string())
        for tenant in pc.unique(column).to_pylist():
            rows = table.filter(pc.equal(column, tenant))
            report = self.store.ingest_batch(tenant or self.tenant, rows)
            result.lines += report.accepted
            result.segments += len(report.segments)
            result.bytes += int(pc.sum(pc.binary_length(rows.column("line"))).as_py() or 0)
            for reason, count in report.rejected.items():
                result.drops.add(reason, count)
        return result

    def close(self) -> None:
        """Nothing to release: every write is complete when it returns."""
