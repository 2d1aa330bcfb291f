"""One store write per flush: all partitions of a flush in one segment per stream, every
partition's offset range recorded in the same atomic manifest update."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.errors import StoreError
from logpipe.pipeline import (
    AckToken,
    BatchLimits,
    Chunk,
    DrainFn,
    Pipeline,
    ResumeFn,
    SinkItem,
    StoreSink,
    WriteResult,
)
from logpipe.records import raw_batch
from logpipe.store import Store

Row = tuple[int, str, bytes]


def rows(batches: Iterable[pa.RecordBatch]) -> list[Row]:
    out: list[Row] = []
    for b in batches:
        out += zip(
            b["ts"].cast(pa.int64()).to_pylist(),
            b["stream"].cast(pa.string()).to_pylist(),
            b["line"].to_pylist(),
            strict=True,
        )
    return out


def partition_batch(partition: int, first: int, n: int, *, ts: int = 7) -> pa.RecordBatch:
    """``n`` lines of partition ``partition`` from offset ``first``, two streams, every
    line at timestamp ``ts`` (ties everywhere: the order must come from ingest order)."""
    offsets = range(first, first + n)
    return raw_batch(
        [f"p{partition} o{o} {'odd' if o % 2 else 'even'}".encode() for o in offsets],
        source="t",
        offsets=list(offsets),
        partition=partition,
        labels=pa.array(['{app="a"}' if o % 3 else '{app="b"}' for o in offsets]),
        ts=pa.array([ts] * n, pa.int64()),
    )


def test_parts_become_one_segment_per_stream_with_every_range_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path / "one")
    parts = [(partition_batch(p, 100 * p, 9), ("t", p, 100 * p, 100 * p + 8)) for p in range(4)]
    reports = store.ingest_batches("fake", parts)
    assert [r.accepted for r in reports] == [9] * 4 and not any(r.duplicate for r in reports)
    manifest = store.manifest("fake")
    assert len(manifest.segments) == 2  # one per stream, not one per partition and stream
    assert manifest.offsets == {("t", p): 100 * p + 8 for p in range(4)}
    assert sorted(reports[0].segments) == sorted(s.path for s in manifest.segments)
    # the same lines written part by part come out in the same order, ties included
    apart = Store(tmp_path / "apart")
    for batch, position in parts:
        apart.ingest_batch("fake", batch, position=position)
    assert len(apart.manifest("fake").segments) == 8
    for direction in ("forward", "backward"):
        assert rows(store.read("fake", direction=direction)) == rows(
            apart.read("fake", direction=direction)
        )


def test_duplicate_parts_are_skipped_and_an_overlap_fails_the_whole_write(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.ingest_batches("fake", [(partition_batch(0, 0, 5), ("t", 0, 0, 4))])
    again = store.ingest_batches(
        "fake",
        [(partition_batch(0, 0, 5), ("t", 0, 0, 4)), (partition_batch(1, 0, 3), ("t", 1, 0, 2))],
    )
    assert [r.duplicate for r in again] == [True, False]
    assert [r.accepted for r in again] == [0, 3]
    before = store.manifest("fake")
    with pytest.raises(StoreError, match="overlap"):
        store.ingest_batches(
            "fake",
            [
                (partition_batch(2, 0, 2), ("t", 2, 0, 1)),
                (partition_batch(0, 3, 4), ("t", 0, 3, 6)),
            ],
        )
    assert store.manifest("fake") == before  # nothing of the failed call was recorded
    assert len(list(tmp_path.rglob("*.lpz"))) == len(before.segments)
    # two ranges of one partition in one call must follow each other
    ok = store.ingest_batches(
        "fake",
        [(partition_batch(0, 5, 2), ("t", 0, 5, 6)), (partition_batch(0, 7, 2), ("t", 0, 7, 8))],
    )
    assert [r.accepted for r in ok] == [2, 2]
    assert store.manifest("fake").offsets[("t", 0)] == 8


def test_sink_writes_a_flush_of_partitions_once_and_drops_what_is_stored(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    sink = StoreSink(store)
    items = [
        SinkItem(("t", p), pa.Table.from_batches([partition_batch(p, 0, 6)]), (0, 5))
        for p in range(3)
    ]
    results = sink.write_many(items)
    assert [r.lines for r in results] == [6, 6, 6]
    assert sum(r.segments for r in results) == 2 == len(store.manifest("fake").segments)
    # a redelivery after a crash before the commit: partition 1 partly stored, others whole
    redelivered = [items[0], SinkItem(("t", 1), pa.Table.from_batches([partition_batch(1, 0, 9)]),
                                      (0, 8))]  # fmt: skip
    again = sink.write_many(redelivered)
    assert again[0].duplicate and again[1].lines == 3
    assert store.manifest("fake").offsets == {("t", 0): 5, ("t", 1): 8, ("t", 2): 5}
    assert store.stats("fake").entries == 21  # 18 + the 3 new ones, nothing twice


class PartitionedSource:
    """``partitions`` keys, ``per_chunk`` lines each per poll, ``total`` lines in all."""

    def __init__(self, total: int, partitions: int, per_chunk: int) -> None:
        self.name = "parts"
        self.total, self.partitions, self.per_chunk = total, partitions, per_chunk
        self.next = [0] * partitions
        self.emitted = 0
        self.acked: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        del drain, resume

    def poll(self, timeout_s: float) -> list[Chunk]:
        if self.emitted >= self.total:
            time.sleep(min(timeout_s, 0.01))
            return []
        chunks = []
        for p in range(self.partitions):
            first = self.next[p]
            batch = partition_batch(p, first, self.per_chunk, ts=first)
            chunks.append(Chunk(source=self.name, key=("t", p), batch=batch, first=first,
                                last=first + self.per_chunk - 1,
                                token=("t", p, first + self.per_chunk),
                                idempotent=True))  # fmt: skip
            self.next[p] += self.per_chunk
            self.emitted += self.per_chunk
        return chunks

    def ack(self, tokens: Sequence[AckToken]) -> None:
        for token in tokens:
            assert isinstance(token, tuple)
            self.acked[(token[0], token[1])] = token[2]

    def commit(self) -> None:
        self.committed.update(self.acked)

    def close(self) -> None:
        self.commit()

    def lag(self) -> dict[tuple[str, int], int]:
        return {}


class RecordingSink(StoreSink):
    """The store sink, noting every call and what the store held when each began."""

    def __init__(self, store: Store, source: PartitionedSource) -> None:
        super().__init__(store)
        self.source = source
        self.calls: list[int] = []

    def write_many(self, items: Sequence[SinkItem]) -> list[WriteResult]:
        self.calls.append(len(items))
        offsets = self.store.manifest(self.tenant).offsets
        for key, last in self.source.acked.items():  # nothing acked beyond what is durable
            assert offsets.get(key, -1) >= last - 1
        return super().write_many(items)


def test_pipeline_makes_one_store_write_per_flush(tmp_path: Path) -> None:
    store = Store(tmp_path)
    source = PartitionedSource(total=4 * 10 * 5, partitions=4, per_chunk=10)
    sink = RecordingSink(store, source)
    limits = BatchLimits(max_lines=40, max_age_s=60)  # one poll (4 partitions) per flush
    pipe = Pipeline([source], [], [sink], limits=limits)
    pipe.start()
    deadline = time.monotonic() + 20
    while pipe.stats.lines_out < source.total:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    pipe.stop()
    assert pipe.join(10) and pipe.error is None
    assert sink.calls == [4] * 5  # every flush: one call with all four partitions
    assert len(store.manifest("fake").segments) == 2 * 5  # a segment per stream and flush
    assert source.committed == {("t", p): 50 for p in range(4)}
    assert store.manifest("fake").offsets == {("t", p): 49 for p in range(4)}
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_segment_flushes_total{sink="store"} 5.0' in text
    assert 'logpipe_segments_written_total{sink="store"} 10.0' in text
