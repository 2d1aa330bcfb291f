"""The store returns exactly what a brute-force filter over its input returns, in order."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.archive.codec import encode_segment
from logpipe.labels import LabelMatcher, MatchOp, format_labels, match_all
from logpipe.parsing import TemplateMiner
from logpipe.store import Store
from logpipe.store.index import build_index, may_contain
from logpipe.store.query import Direction

_WORDS = st.sampled_from(["GET", "PUT", "/a", "/b", "ok", "err", "id=1", "id=22", "7", "x y"])
_LINE = st.lists(_WORDS, min_size=1, max_size=5).map(lambda ws: " ".join(ws).encode())
_LABELS = st.fixed_dictionaries(
    {"app": st.sampled_from(["a", "b", "c"])},
    optional={"env": st.sampled_from(["prod", "dev", ""])},
)
_INGEST = st.tuples(
    st.sampled_from(["fake", "t2"]),
    _LABELS,
    st.lists(st.tuples(st.integers(0, 40), _LINE), min_size=1, max_size=12),
)
_MATCHER = st.builds(
    LabelMatcher,
    st.sampled_from(["app", "env"]),
    st.sampled_from(list(MatchOp)),
    st.sampled_from(["a", "b", "prod", "", "a|b", ".*", "d.*"]),
)

Row = tuple[int, str, bytes]


@dataclass(frozen=True)
class Query:
    tenant: str
    matchers: list[LabelMatcher]
    start: int
    end: int
    direction: Direction
    limit: int | None
    contains: tuple[str, ...]


_QUERY = st.builds(
    Query,
    st.sampled_from(["fake", "t2", "nobody"]),
    st.lists(_MATCHER, max_size=2),
    st.integers(0, 45),
    st.integers(0, 45),
    st.sampled_from(["forward", "backward"]),
    st.one_of(st.none(), st.integers(0, 20)),
    st.one_of(st.just(()), st.tuples(_WORDS)),
)


def brute_force(
    ingests: list[tuple[str, dict[str, str], list[tuple[int, bytes]]]], q: Query
) -> list[Row]:
    """Every input line the query selects, sorted as the store promises."""
    expected: list[tuple[int, str, int, bytes]] = []  # ts, stream, ingest order, line
    order = 0
    for who, labels, entries in ingests:
        for t, line in entries:
            order += 1
            if who != q.tenant or not match_all(q.matchers, labels) or not q.start <= t < q.end:
                continue
            if all(c.encode() in line for c in q.contains):
                expected.append((t, format_labels(labels), order, line))
    expected.sort(key=lambda r: (r[0], r[1], r[2]))
    want: list[Row] = [(t, s, line) for t, s, _, line in expected]
    if q.direction == "backward":
        want.reverse()
    return want if q.limit is None else want[: q.limit]


@given(st.lists(_INGEST, min_size=1, max_size=6), st.lists(_QUERY, min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_read_equals_brute_force(
    ingests: list[tuple[str, dict[str, str], list[tuple[int, bytes]]]], queries: list[Query]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), segment_bytes=40)
        for who, labels, entries in ingests:
            store.ingest(who, labels, [t for t, _ in entries], [line for _, line in entries])
        for q in queries:
            got: list[Row] = []
            for batch in store.read(
                q.tenant,
                q.matchers,
                q.start,
                q.end,
                direction=q.direction,
                limit=q.limit,
                contains=q.contains,
            ):
                got += zip(
                    batch["ts"].cast(pa.int64()).to_pylist(),
                    batch["stream"].cast(pa.string()).to_pylist(),
                    batch["line"].to_pylist(),
                    strict=True,
                )
            want = brute_force(ingests, q)
            assert got == want
            listed = store.streams(q.tenant, q.matchers, q.start, q.end)
            assert {s for _, s, _ in want} <= {format_labels(x) for x in listed}


_CHARS = st.sampled_from(["a", "b", "1", "2", " ", "=", "\xff", "é"])


@given(
    st.lists(st.lists(_CHARS, max_size=12).map("".join), min_size=1, max_size=15),
    st.lists(_CHARS, min_size=1, max_size=6).map("".join),
)
@settings(max_examples=300, deadline=None)
def test_may_contain_never_misses(lines: list[str], needle: str) -> None:
    def invalid(text: str) -> bytes:  # "\xff" stands for a byte that is not UTF-8
        return text.encode().replace(b"\xc3\xbf", b"\xff")

    raw = [invalid(line) for line in lines]
    segment = encode_segment(raw, True, TemplateMiner())
    index = build_index(segment.header, segment.streams)
    if any(invalid(needle) in line for line in raw):
        assert may_contain(index, invalid(needle))
    if any(needle.encode() in line for line in raw):
        assert may_contain(index, needle)
