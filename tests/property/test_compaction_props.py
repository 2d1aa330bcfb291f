"""Compaction: the plan only merges what may be merged, and a compacted store answers every
query exactly as a brute-force filter over its input does (ties included)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.store import SegmentEntry, Store
from logpipe.store.compaction import plan_compaction, weight
from logpipe.store.index import ContentIndex
from tests.property.test_store_props import _INGEST, _QUERY, Query, Row, brute_force

_NO_INDEX = ContentIndex((), b"")


def _entry(i: int, row: tuple[str, int, int, int, int]) -> SegmentEntry:
    stream, raw, lines, min_ts, span = row
    return SegmentEntry(path=f"streams/{stream}/{i}.lpz", stream=stream, labels={"s": stream},
                        seq=i, min_ts=min_ts, max_ts=min_ts + span, lines=lines, bytes=raw,
                        raw_bytes=raw, index=_NO_INDEX)  # fmt: skip


_SEGMENTS = st.lists(
    st.tuples(
        st.sampled_from(["x", "y"]),
        st.integers(0, 700),
        st.integers(1, 30),
        st.integers(0, 10_000),
        st.integers(0, 500),
    ),
    max_size=40,
).map(lambda rows: [_entry(i, row) for i, row in enumerate(rows)])


@given(
    _SEGMENTS,
    st.integers(1, 1500),
    st.one_of(st.none(), st.integers(1, 3000)),
    st.one_of(st.none(), st.integers(0, 10_000)),
)
@settings(max_examples=300, deadline=None)
def test_plan_merges_adjacent_small_segments_of_one_stream_within_bounds(
    segments: list[SegmentEntry], target: int, span: int | None, expired_before: int | None
) -> None:
    jobs = plan_compaction(
        segments, target_bytes=target, max_span_ns=span, expired_before_ns=expired_before
    )
    used: set[str] = set()
    for job in jobs:
        inputs = job.inputs
        assert len(inputs) >= 2
        assert len({s.stream for s in inputs}) == 1
        same_stream = sorted((s for s in segments if s.stream == inputs[0].stream),
                             key=lambda s: s.seq)  # fmt: skip
        at = same_stream.index(inputs[0])
        assert list(inputs) == same_stream[at : at + len(inputs)]  # adjacent, in seq order
        assert job.weight == sum(weight(s) for s in inputs) <= target
        assert all(2 * weight(s) <= target for s in inputs)  # done segments stay
        if span is not None:
            assert max(s.max_ts for s in inputs) - min(s.min_ts for s in inputs) < span
        if expired_before is not None:
            assert all(s.max_ts >= expired_before for s in inputs)
        assert not used & {s.path for s in inputs}
        used |= {s.path for s in inputs}


@given(
    st.lists(_INGEST, min_size=1, max_size=8),
    st.lists(st.integers(0, 8), max_size=3),
    st.sampled_from([60, 200, 1000]),
    st.lists(_QUERY, min_size=1, max_size=4),
)
@settings(max_examples=40, deadline=None)
def test_compacted_store_reads_equal_brute_force(
    ingests: list[tuple[str, dict[str, str], list[tuple[int, bytes]]]],
    compact_after: list[int],
    target: int,
    queries: list[Query],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), segment_bytes=40, manifest_seal_entries=2)  # chunks too
        for i, (who, labels, entries) in enumerate(ingests):
            store.ingest(who, labels, [t for t, _ in entries], [line for _, line in entries])
            if i in compact_after:
                store.compact(target_bytes=target)
        store.compact(target_bytes=target)
        for q in queries:
            got: list[Row] = []
            for batch in store.read(q.tenant, q.matchers, q.start, q.end, direction=q.direction,
                                    limit=q.limit, contains=q.contains):  # fmt: skip
                got += zip(
                    batch["ts"].cast(pa.int64()).to_pylist(),
                    batch["stream"].cast(pa.string()).to_pylist(),
                    batch["line"].to_pylist(),
                    strict=True,
                )
            assert got == brute_force(ingests, q)
        for tenant in store.tenants():  # a reader from disk sees what the writer holds
            assert Store(Path(tmp)).manifest(tenant) == store.manifest(tenant)
