"""Which segments retention removes (pure): whole segments, oldest first.

A segment goes when its *newest* line is older than ``now - max_age`` (Loki's retention
also deletes whole chunks by their end time: no segment is rewritten to drop some of its
lines). Then, while the tenant's segment files exceed ``max_bytes``, the oldest remaining
segments go, ordered by newest line, then oldest line, then ingest order.
"""

from __future__ import annotations

from collections.abc import Sequence

from logpipe.store.manifest import SegmentEntry

__all__ = ["select_expired"]


def select_expired(
    segments: Sequence[SegmentEntry],
    *,
    max_age_ns: int | None,
    max_bytes: int | None,
    now_ns: int,
) -> list[tuple[SegmentEntry, str]]:
    """``(segment, reason)`` for each segment to remove; reason ``"age"`` or ``"size"``."""
    oldest_first = sorted(segments, key=lambda s: (s.max_ts, s.min_ts, s.seq))
    removed: list[tuple[SegmentEntry, str]] = []
    kept: list[SegmentEntry] = []
    for s in oldest_first:
        if max_age_ns is not None and s.max_ts < now_ns - max_age_ns:
            removed.append((s, "age"))
        else:
            kept.append(s)
    if max_bytes is not None:
        total = sum(s.bytes for s in kept)
        for s in kept:
            if total <= max_bytes:
                break
            removed.append((s, "size"))
            total -= s.bytes
    return removed
