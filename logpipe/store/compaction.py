"""Which small segments to merge (pure): adjacent segments of one stream, sizes doubling.

Why compaction: the daemon flushes about once a second, and each flush writes one segment
per stream, so a steady stream leaves thousands of small segments behind, each an entry
that the manifest holds in memory and rewrites on every flush. Merging them into segments
near the target size keeps the manifest (and the files a query opens) proportional to the
data in ``segment_bytes`` units, not to the number of flushes.

What may be merged, and why it keeps queries exact: only segments of **one stream that
are adjacent in ingest order** (``seq``, among that stream's segments). A query orders
lines by timestamp, then stream, then ``seq`` and row; the merged segment holds the inputs'
lines stably sorted by timestamp over their concatenation in ``seq`` order, and takes the
first input's ``seq``. Every other segment of the stream has a ``seq`` below or above the
whole run, so every pair of lines keeps its order: results are identical, ties included.

The plan, per stream (a *weight* is raw bytes plus one per line, the measure ingest cuts
segments by):

- A segment weighing more than half the target is *done*: never rewritten. Runs of
  adjacent small segments lie between done ones.
- In the stream's newest run, which later flushes extend, from the oldest segment on,
  take the longest window that fits the target (weight and, when set, time span) in which
  **no input weighs more than half the window**, or whose result is done. Merging it at
  least doubles the size of the segment each input line lives in (or finishes it), so a
  line is rewritten at most ``log2(target / smallest segment) + 1`` times however the
  flushes are sized, and a slow stream does not rewrite its big head for every new tiny
  segment (the write amplification of "merge everything small" grows without bound).
- A run followed by a done segment is *closed*: nothing will ever be appended to it, so
  its segments are packed into windows that fit the target, without the doubling rule
  (one last rewrite). Otherwise a rate that dips between busy flushes would strand small
  segments forever.
- Segments already past ``expired_before_ns`` are left to retention (they close the run
  before them, as done segments do).

With one flush segment per second of about 0.7 MB (the soak benchmark's rate) and the
default 4 MiB target, windows of five flush segments are merged once each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from logpipe.store.manifest import SegmentEntry

__all__ = ["CompactionJob", "plan_compaction", "weight"]


@dataclass(frozen=True)
class CompactionJob:
    """Adjacent segments of one stream (in ``seq`` order) to become one segment."""

    inputs: tuple[SegmentEntry, ...]

    @property
    def weight(self) -> int:
        return sum(weight(s) for s in self.inputs)


def weight(segment: SegmentEntry) -> int:
    """Raw bytes plus a newline per line: what ``Store`` cuts segments by."""
    return segment.raw_bytes + segment.lines


def _best_window(
    run: Sequence[SegmentEntry], start: int, target: int, max_span_ns: int | None, closed: bool
) -> int:
    """The end (exclusive) of the longest window from ``start`` that may be merged
    (``start`` itself when none: a window needs two segments)."""
    best = start
    total, biggest = 0, 0
    min_ts, max_ts = run[start].min_ts, run[start].max_ts
    for end in range(start, len(run)):
        s = run[end]
        total += weight(s)
        biggest = max(biggest, weight(s))
        min_ts, max_ts = min(min_ts, s.min_ts), max(max_ts, s.max_ts)
        if total > target or (max_span_ns is not None and max_ts - min_ts >= max_span_ns):
            break
        if end > start and (closed or 2 * biggest <= total or 2 * total > target):
            best = end + 1
    return best


def _plan_run(
    run: Sequence[SegmentEntry], target: int, max_span_ns: int | None, closed: bool
) -> Iterable[CompactionJob]:
    i = 0
    while i < len(run):
        end = _best_window(run, i, target, max_span_ns, closed)
        if end > i:
            yield CompactionJob(tuple(run[i:end]))
            i = end
        else:
            i += 1


def plan_compaction(
    segments: Iterable[SegmentEntry],
    *,
    target_bytes: int,
    max_span_ns: int | None = None,
    expired_before_ns: int | None = None,
) -> list[CompactionJob]:
    """The merges worth doing now, oldest first within each stream.

    ``target_bytes``: the most a merged segment may weigh; ``max_span_ns``: the most time
    it may span (``max_ts - min_ts`` below it; retention deletes whole segments by their
    newest line, so this bounds how long a line can outlive the retention period);
    ``expired_before_ns``: segments whose newest line is older are not touched.
    """
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    by_stream: dict[str, list[SegmentEntry]] = {}
    for segment in segments:
        by_stream.setdefault(segment.stream, []).append(segment)
    jobs: list[CompactionJob] = []
    for stream_segments in by_stream.values():
        stream_segments.sort(key=lambda s: s.seq)
        run: list[SegmentEntry] = []
        for segment in stream_segments:
            if 2 * weight(segment) <= target_bytes and (
                expired_before_ns is None or segment.max_ts >= expired_before_ns
            ):
                run.append(segment)
                continue
            jobs += _plan_run(run, target_bytes, max_span_ns, closed=True)
            run = []
        jobs += _plan_run(run, target_bytes, max_span_ns, closed=False)
    return jobs
