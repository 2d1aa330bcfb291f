"""Selecting streams and segments, and merging segments' rows in time order (pure).

No I/O here: :func:`merge_rows` gets a ``load`` callable that opens one segment, so the
planning (which segments, in which order, when rows are safe to emit) is testable alone.

Order of results. Forward: by timestamp, then by the stream's label text, then by ingest
order within the stream (segment ``seq``, row); backward is exactly the reverse. Lines with
equal timestamps therefore always come out in one well-defined order (Loki leaves it to its
chunk iterators), which is what lets a property test compare with a brute-force filter.

Time range: ``start_ns <= ts < end_ns``, as Loki's queriers filter log queries: start
inclusive, end exclusive, so adjacent windows (Grafana's split queries, pagination with
the last timestamp as the next end) tile the time line without repeating or losing a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy
from logpipe.labels import LabelMatcher, format_labels
from logpipe.store.index import may_contain_all
from logpipe.store.manifest import SegmentEntry

__all__ = ["READ_SCHEMA", "Direction", "candidates", "matching_streams", "merge_rows"]

Direction = Literal["forward", "backward"]

READ_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("stream", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("line", pa.binary(), nullable=False),
    ]
)

Loader = Callable[[SegmentEntry], tuple[np.ndarray, pa.Array]]


def matching_streams(
    segments: Iterable[SegmentEntry], matchers: Sequence[LabelMatcher]
) -> dict[str, Mapping[str, str]]:
    """Stream id -> labels of the streams among ``segments`` that satisfy every matcher.

    Each matcher runs once over all streams' values of its label (one RE2 kernel call),
    not once per stream.
    """
    streams: dict[str, Mapping[str, str]] = {}
    for s in segments:
        streams.setdefault(s.stream, s.labels)
    ids = list(streams)
    keep = [True] * len(ids)
    for matcher in matchers:
        hits = matcher.match_values([streams[i].get(matcher.name, "") for i in ids])
        keep = [k and h for k, h in zip(keep, hits, strict=True)]
    return {i: streams[i] for i, k in zip(ids, keep, strict=True) if k}


def candidates(
    segments: Iterable[SegmentEntry],
    matchers: Sequence[LabelMatcher],
    start_ns: int,
    end_ns: int,
    needles: Sequence[str] = (),
) -> list[SegmentEntry]:
    """Segments that may hold a selected line: time overlap, labels, then content filter."""
    in_range = [s for s in segments if s.overlaps(start_ns, end_ns)]
    wanted = matching_streams(in_range, matchers)
    return [s for s in in_range if s.stream in wanted and may_contain_all(s.index, needles)]


class _Pending:
    """Rows loaded but not yet emitted, as parallel columns."""

    def __init__(self) -> None:
        self.ts: list[np.ndarray] = []
        self.rank: list[np.ndarray] = []
        self.seq: list[np.ndarray] = []
        self.row: list[np.ndarray] = []
        self.lines: list[pa.Array] = []

    def add(self, ts: np.ndarray, rank: int, seq: int, rows: np.ndarray, lines: pa.Array) -> None:
        self.ts.append(ts)
        self.rank.append(np.full(len(ts), rank, dtype=np.int32))
        self.seq.append(np.full(len(ts), seq, dtype=np.int64))
        self.row.append(rows)
        self.lines.append(lines)

    def take_ready(
        self, frontier: int | None, forward: bool
    ) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """Sorted rows no later segment can precede (all when ``frontier`` is None)."""
        ts = np.concatenate(self.ts) if self.ts else np.zeros(0, np.int64)
        rank = np.concatenate(self.rank) if self.rank else np.zeros(0, np.int32)
        seq = np.concatenate(self.seq) if self.seq else np.zeros(0, np.int64)
        row = np.concatenate(self.row) if self.row else np.zeros(0, np.int64)
        lines = pa.concat_arrays(self.lines) if self.lines else pa.array([], pa.binary())
        order = np.lexsort((row, seq, rank, ts))
        if not forward:
            order = order[::-1]
        if frontier is None:
            cut = len(order)
        elif forward:  # a later segment starts at ``frontier``: rows before it are final
            cut = int(np.searchsorted(ts[order], frontier, side="left"))
        else:  # a later segment ends at ``frontier``: rows after it are final
            cut = int(np.searchsorted(-ts[order], -frontier, side="left"))
        ready, rest = order[:cut], order[cut:]
        self.ts, self.rank, self.seq, self.row = [ts[rest]], [rank[rest]], [seq[rest]], [row[rest]]
        self.lines = [lines.take(from_numpy(rest))]
        return ts[ready], rank[ready], lines.take(from_numpy(ready))


def merge_rows(
    entries: Sequence[SegmentEntry],
    load: Loader,
    start_ns: int,
    end_ns: int,
    *,
    direction: Direction = "backward",
    limit: int | None = None,
    needles: Sequence[str] = (),
    batch_rows: int = 65536,
) -> Iterator[pa.RecordBatch]:
    """Rows of ``entries`` within the range (and holding every needle), in order.

    Segments are opened in the order their first possible row comes (forward: by
    ``min_ts``; backward: by ``max_ts``, newest first); after each, the rows that no
    unopened segment can precede are emitted. So memory holds only segments that overlap
    in time, and with a ``limit`` the segments beyond it are never opened.
    """
    forward = direction == "forward"
    if forward:
        order = sorted(entries, key=lambda e: (e.min_ts, e.seq))
    else:
        order = sorted(entries, key=lambda e: (-e.max_ts, -e.seq))
    names = sorted({format_labels(e.labels) for e in order})
    rank_of = {name: i for i, name in enumerate(names)}
    dictionary = pa.array(names, pa.string())
    remaining = limit
    pending = _Pending()
    for i, entry in enumerate(order):
        if remaining is not None and remaining <= 0:
            return
        ts, lines = load(entry)
        mask = (ts >= start_ns) & (ts < end_ns)
        for needle in needles:  # byte-wise substring search on the binary lines
            mask &= pc.match_substring(lines, needle).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(mask)
        if len(rows):
            pending.add(
                ts[rows],
                rank_of[format_labels(entry.labels)],
                entry.seq,
                rows,
                lines.take(from_numpy(rows)),
            )
        frontier = None
        if i + 1 < len(order):
            frontier = order[i + 1].min_ts if forward else order[i + 1].max_ts
        ready_ts, ready_rank, ready_lines = pending.take_ready(frontier, forward)
        if remaining is not None:
            ready_ts, ready_rank = ready_ts[:remaining], ready_rank[:remaining]
            ready_lines = ready_lines.slice(0, remaining)
            remaining -= len(ready_ts)
        for at in range(0, len(ready_ts), batch_rows):
            part = slice(at, at + batch_rows)
            yield pa.RecordBatch.from_arrays(
                [
                    from_numpy(ready_ts[part]).cast(pa.timestamp("ns", tz="UTC")),
                    pa.DictionaryArray.from_arrays(from_numpy(ready_rank[part]), dictionary),
                    ready_lines.slice(at, batch_rows),
                ],
                schema=READ_SCHEMA,
            )
