"""The store as a sink: one atomic, idempotent store write per source and flush.

Every key of a flush (a Kafka partition) keeps its own offset range (``position``): a
partition is the unit whose offsets are ordered. :meth:`StoreSink.write_many` hands all of
a source's keys to one ``Store.ingest_batches``, so a flush makes one segment per stream,
not one per partition and stream, and one manifest update that records every range with
the segments. That atomic update is what makes "commit after durable write" exactly-once
in effect: a crash after the write but before the Kafka commit redelivers ranges the
store already holds, and this sink drops them (trimming partly stored ones) instead of
storing them twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.pipeline.api import Drops, SinkItem, WriteResult
from logpipe.store import DEFAULT_TENANT, Store
from logpipe.store.maintenance import Compactor

__all__ = ["TENANT_COLUMN", "StoreSink"]

#: Rows that carry their own tenant (pushes with ``X-Scope-OrgID``) name it in this column.
TENANT_COLUMN = "tenant"


class StoreSink:
    """Writes LogBatches into ``store``, as ``tenant`` unless the rows carry a ``tenant``
    column (pushes). Multi-line entries (a joined stack trace, a Kafka message holding
    several lines) are stored whole. With a ``compactor``, small segments are merged
    between flushes (:meth:`maintain`, see :mod:`logpipe.store.maintenance`)."""

    def __init__(
        self,
        store: Store,
        tenant: str = DEFAULT_TENANT,
        *,
        name: str = "store",
        compactor: Compactor | None = None,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.name = name
        self.compactor = compactor

    def maintain(self) -> None:
        """One merge of small segments when due (the runner calls this between flushes)."""
        if self.compactor is not None:
            self.compactor.step()

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        """The last offset of ``key`` the store holds (None: never written)."""
        return self.store.manifest(self.tenant).offsets.get(key)

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        return self.write_many([SinkItem(key, table, span)])[0]

    def write_many(self, items: Sequence[SinkItem]) -> list[WriteResult]:
        """Rows without a ``tenant`` column: one atomic store write for all items (ranges
        already stored are dropped first). Rows with one (pushes): one write per tenant."""
        results = [WriteResult() for _ in items]
        parts: list[tuple[int, pa.Table, tuple[str, int, int, int] | None]] = []
        for i, (key, table, span) in enumerate(items):
            if TENANT_COLUMN in table.schema.names:
                results[i] = self._write_tenants(table)
                continue
            trimmed = self._unstored(key, table, span)
            if trimmed is None:
                results[i].duplicate = True
                continue
            parts.append((i, *trimmed))
        if not parts:
            return results
        reports = self.store.ingest_batches(self.tenant, [(t, p) for _, t, p in parts])
        segments = max(len(r.segments) for r in reports)  # one write: count its files once
        for (i, table, _), report in zip(parts, reports, strict=True):
            result = results[i]
            result.duplicate = report.duplicate
            result.lines = report.accepted
            result.segments, segments = segments, 0
            result.bytes = int(pc.sum(pc.binary_length(table.column("line"))).as_py() or 0)
            result.drops = Drops(dict(report.rejected))
        return results

    def _unstored(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> tuple[pa.Table, tuple[str, int, int, int] | None] | None:
        """The rows and range of ``key`` the store does not hold yet (None: all held)."""
        if span is None:
            return table, None
        first, last = span
        done = self.resume_offset(key)
        if done is not None and done >= first:
            if done >= last:
                return None
            table = table.filter(pc.greater(table.column("offset"), done))
            first = done + 1
        return table, (key[0], key[1], first, last)

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
