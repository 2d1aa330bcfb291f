"""Events into windows: sessions keyed by an id, or sliding time windows, each bounded.

Why here and not in each data set: GLAD and every baseline must see exactly the same
windows, and ``logpipe detect score`` must cut a user's log the way training did. So the
two ways of grouping live once, as pure functions over :class:`~logpipe.detect.windows.Event`
lists:

* :func:`sessions` / :func:`sessions_from_keys`: one window per key (an HDFS block id, a
  request or session id); a line naming several keys goes to each of them. Windows are
  ordered by their first event's time, ties by its line number.
* :func:`time_windows`: windows ``[origin + k*step, origin + k*step + size)`` aligned to the
  epoch (so an online scorer cuts the same windows as training did), sliding when
  ``step < size``. Only windows holding at least one event are made: a log spread over months
  would otherwise produce millions of empty windows.

Every window keeps at most ``max_events`` events (the first ones in its order); the rest are
counted in :attr:`Window.dropped`, never silently lost, so memory per window is bounded
whatever the input. Labels, when given per event, are computed over *all* of a window's
events, dropped ones included: the ground truth describes the window, not what a detector
was shown of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.detect.events import ParsedLines
from logpipe.detect.windows import Event, Window
from logpipe.errors import UsageError

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "MAX_WINDOWS_PER_EVENT",
    "Windowing",
    "label_by_key",
    "regex_keys",
    "sessions",
    "sessions_from_keys",
    "time_key",
    "time_windows",
]

DEFAULT_MAX_EVENTS = 1024
"""Events kept per window by default; HDFS blocks hold a few dozen, BGL hours a few hundred."""

MAX_WINDOWS_PER_EVENT = 1024
"""The most windows one event may fall in (``size / step``): beyond that, sliding windows
multiply the data more than any detector needs, and the caller has mistaken a unit."""

KeyFn = Callable[[Event], str | Sequence[str] | None]


def _labels_array(labels: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    out = np.asarray(labels, dtype=np.int64)
    if out.shape != (n,):
        raise UsageError(f"labels: one per event expected ({n}), got shape {out.shape}")
    return out


def sessions(
    events: Sequence[Event],
    key_fn: KeyFn,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    labels: Sequence[int] | np.ndarray | None = None,
) -> list[Window]:
    """One window per session key; ``key_fn`` gives an event's key(s) or None for none.

    Events without a key belong to no window (callers count them: see
    :func:`sessions_from_keys`). ``labels`` (0/1 per event) make each window's label the
    maximum over its events; otherwise labels are None (label later, e.g. with
    :func:`label_by_key`).
    """
    keys: list[Sequence[str]] = []
    for event in events:
        found = key_fn(event)
        keys.append(() if found is None else (found,) if isinstance(found, str) else found)
    return sessions_from_keys(events, keys, max_events=max_events, labels=labels)


def sessions_from_keys(
    events: Sequence[Event],
    keys: Sequence[Sequence[str]],
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    labels: Sequence[int] | np.ndarray | None = None,
) -> list[Window]:
    """:func:`sessions` with each event's keys computed by the caller (vectorised keying).

    ``keys[i]`` are the keys of ``events[i]`` (empty: no session; a key repeated in one
    line counts once). Events stay in input (arrival) order inside a window.
    """
    if max_events < 1:
        raise UsageError("max_events must be at least 1")
    if len(keys) != len(events):
        raise UsageError(f"keys: one entry per event expected ({len(events)}), got {len(keys)}")
    label_arr = _labels_array(labels, len(events))
    members: dict[str, list[int]] = {}
    for i, event_keys in enumerate(keys):
        if not event_keys:
            continue
        for key in dict.fromkeys(event_keys):  # a line naming a block twice goes once
            members.setdefault(key, []).append(i)
    windows: list[tuple[tuple[int, int, str], Window]] = []
    for key, idx in members.items():
        ts = [events[i].ts_ns for i in idx]
        start, end = min(ts), max(ts)
        kept = tuple(events[i] for i in idx[:max_events])
        label = None if label_arr is None else int(label_arr[idx].max())
        window = Window(key, start, end, kept, max(0, len(idx) - max_events), label)
        windows.append(((start, events[idx[0]].line_no, key), window))
    windows.sort(key=lambda item: item[0])
    return [w for _, w in windows]


def time_key(start_ns: int) -> str:
    """A time window's key: its start in ISO 8601 UTC (``2005-06-03T15:00:00Z``)."""
    secs, ns = divmod(start_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns:09d}Z" if ns else f"{stamp}Z"


def time_windows(
    events: Sequence[Event],
    size_ns: int,
    step_ns: int | None = None,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    labels: Sequence[int] | np.ndarray | None = None,
    origin_ns: int = 0,
) -> list[Window]:
    """Sliding (``step_ns < size_ns``) or tumbling (``step_ns`` None or equal) time windows.

    Window ``k`` covers ``[origin_ns + k*step_ns, origin_ns + k*step_ns + size_ns)``; events
    inside are in time order (ties in input order); windows come in order of start. Empty
    windows are not made. ``labels`` as in :func:`sessions`.
    """
    step = size_ns if step_ns is None else step_ns
    if size_ns < 1 or step < 1:
        raise UsageError("time windows need a positive size and step")
    if step > size_ns:
        raise UsageError(
            f"window step ({step} ns) larger than its size ({size_ns} ns) would skip events"
        )
    if -(-size_ns // step) > MAX_WINDOWS_PER_EVENT:
        raise UsageError(
            f"size/step = {size_ns / step:.0f}: each event would fall in more than "
            f"{MAX_WINDOWS_PER_EVENT} windows; use a larger step"
        )
    if max_events < 1:
        raise UsageError("max_events must be at least 1")
    n = len(events)
    label_arr = _labels_array(labels, n)
    if n == 0:
        return []
    ts = np.fromiter((e.ts_ns for e in events), dtype=np.int64, count=n) - origin_ns
    order = np.lexsort((np.arange(n), ts))
    sts = ts[order]
    # window k holds t iff k*step <= t < k*step + size, i.e. k in [lo_k(t), hi_k(t)]
    lo_k = (sts - size_ns) // step + 1
    hi_k = sts // step
    ks = _union_of_ranges(lo_k, hi_k)
    starts = ks * step
    lo = np.searchsorted(sts, starts, side="left")
    hi = np.searchsorted(sts, starts + size_ns, side="left")
    if label_arr is not None:
        cum = np.concatenate(([0], np.cumsum(label_arr[order] > 0)))
        window_labels = (cum[hi] - cum[lo]) > 0
    out: list[Window] = []
    order_list = order.tolist()
    for w, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        start = int(starts[w]) + origin_ns
        kept = tuple(events[order_list[j]] for j in range(a, min(b, a + max_events)))
        label = None if label_arr is None else int(window_labels[w])
        out.append(
            Window(time_key(start), start, start + size_ns, kept, max(0, b - a - max_events), label)
        )
    return out


def _union_of_ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Every integer in the union of ``[lo[i], hi[i]]`` (both non-decreasing), in order."""
    # a new run starts where a range begins after everything before it has ended
    reach = np.maximum.accumulate(hi)
    new_run = np.ones(len(lo), dtype=bool)
    new_run[1:] = lo[1:] > reach[:-1] + 1
    run_starts = lo[new_run]
    run_ends = np.append(reach[np.flatnonzero(new_run)[1:] - 1], reach[-1])
    lengths = run_ends - run_starts + 1
    offsets = np.repeat(run_starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    out: np.ndarray = np.arange(int(lengths.sum()), dtype=np.int64) + offsets
    return out


def label_by_key(windows: Sequence[Window], anomalous_keys: Collection[str]) -> list[Window]:
    """``windows`` labelled 1 when their key is in ``anomalous_keys``, else 0 (HDFS blocks)."""
    return [dataclasses.replace(w, label=int(w.key in anomalous_keys)) for w in windows]


def regex_keys(content: pa.Array, pattern: str) -> list[list[str]]:
    """Every match of ``pattern`` (group ``key``) in each line: the session keys per line.

    Vectorised for the common case: lines are counted with one Arrow kernel, lines with one
    match are extracted with another, and only lines with several matches (an HDFS line
    naming many blocks) go through Python's ``re``.
    """
    n = len(content)
    counts = pc.count_substring_regex(content, pattern=pattern).to_numpy(zero_copy_only=False)
    keys: list[list[str]] = [[] for _ in range(n)]
    single = np.flatnonzero(counts == 1)
    if len(single):
        found = pc.extract_regex(content.take(pa.array(single)), pattern=pattern).field("key")
        for i, key in zip(single.tolist(), found.to_pylist(), strict=True):
            keys[i] = [key]
    many = np.flatnonzero(counts > 1)
    if len(many):
        regex = re.compile(pattern)
        texts = content.take(pa.array(many)).to_pylist()
        for i, text in zip(many.tolist(), texts, strict=True):
            keys[i] = [m.group("key") for m in regex.finditer(text)]
    return keys


_NS = 1_000_000_000


@dataclass(frozen=True)
class Windowing:
    """How parsed lines become windows: the recipe a trained model keeps (as JSON) so that
    scoring cuts new data exactly as training did.

    ``kind="session"``: one window per match of ``key_pattern`` (a regex with a group named
    ``key``) in each line's content. ``kind="time"``: windows of ``size_s`` seconds sliding
    by ``step_s`` (tumbling when equal). ``max_events`` bounds every window.
    """

    kind: str
    key_pattern: str | None = None
    size_s: float | None = None
    step_s: float | None = None
    max_events: int = DEFAULT_MAX_EVENTS

    def __post_init__(self) -> None:
        if self.kind == "session":
            if not self.key_pattern or "(?P<key>" not in self.key_pattern:
                raise UsageError("session windows need a key pattern with a (?P<key>...) group")
            try:
                re.compile(self.key_pattern)
            except re.error as exc:
                raise UsageError(f"session key pattern {self.key_pattern!r}: {exc}") from None
        elif self.kind == "time":
            if not self.size_s or self.size_s <= 0:
                raise UsageError("time windows need a positive size_s")
        else:
            raise UsageError(f"windowing kind must be 'session' or 'time', not {self.kind!r}")

    def windows(
        self, parsed: ParsedLines, labels: Sequence[int] | np.ndarray | None = None
    ) -> list[Window]:
        """Cut ``parsed`` into windows (``labels``: optional 0/1 per line)."""
        events = parsed.events()
        if self.kind == "session":
            assert self.key_pattern is not None
            keys = regex_keys(parsed.content, self.key_pattern)
            return sessions_from_keys(events, keys, max_events=self.max_events, labels=labels)
        assert self.size_s is not None
        size = round(self.size_s * _NS)
        step = size if self.step_s is None else round(self.step_s * _NS)
        return time_windows(events, size, step, max_events=self.max_events, labels=labels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Windowing:
        """Rebuild from :meth:`to_dict` (unknown keys are an error, not ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UsageError(f"windowing: unknown keys {', '.join(sorted(unknown))}")
        return cls(**dict(data))
