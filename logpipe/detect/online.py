"""Windows built online from a stream of events, with bounded state and counted drops.

Two kinds, as in :mod:`logpipe.detect.windows`:

* **time**: tumbling windows of ``window_secs`` per stream (label set), aligned to the
  epoch (``[k*size, (k+1)*size)``). A window closes once its stream's newest event time is
  ``idle_secs`` past its end (``idle_secs`` is the allowed lateness: a topic's partitions,
  or a host's clock, deliver one stream slightly out of order), or, for a stream that went
  quiet, when the wall clock says the same. An event whose window has closed is *late*.
* **session**: events that share a key (the ``session_key`` regex's first group, or its
  whole match, searched in the line: an HDFS block id) form one window, whatever stream
  they come from. A session closes ``idle_secs`` after its last event, measured in event
  time (against the newest event seen) and, when nothing arrives at all, in wall-clock
  time. Lines without a key are not part of any session.

Why both clocks: event time makes a replay of old logs give the same windows as live
traffic; the wall clock makes sure a stream that stops still gets its last window scored.

Bounds: at most ``max_open_windows`` windows are open (opening one more drops the least
recently active one, unscored) and a window keeps at most ``max_events_per_window``
events (the rest are counted in :attr:`Window.dropped`). Every event or window left out
is counted by reason in :attr:`WindowBuilder.counts`; nothing here raises on input.

``end_ns`` is exclusive in both kinds (a session's is its last event's time + 1 ns), as
Loki's query ranges are.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from logpipe.detect.alert import WindowKind
from logpipe.detect.windows import Event, Window

__all__ = ["ClosedWindow", "WindowBuilder", "WindowCounts", "session_key_regex"]

_NS = 1_000_000_000


def session_key_regex(pattern: str) -> re.Pattern[str]:
    """Compile a ``session_key``: ValueError naming the problem when it cannot serve."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    if regex.groups > 1:
        raise ValueError("use at most one capturing group (the key); (?:...) groups others")
    if regex.search("") is not None:
        raise ValueError("matches the empty string, so every line would share one key")
    return regex


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window ready to score, with what an alert about it needs.

    ``labels`` is the label text of the stream of its first event; ``reason`` why it
    closed: ``end`` (event time passed it), ``idle`` (no events for ``idle_secs``) or
    ``flush`` (the stage was flushed).
    """

    window: Window
    kind: WindowKind
    labels: str
    reason: str


@dataclass
class WindowCounts:
    """Events added, and events and windows left out by reason, since the last
    :meth:`WindowBuilder.take_counts`."""

    added: int = 0
    events: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)

    def event(self, reason: str, count: int = 1) -> None:
        if count:
            self.events[reason] = self.events.get(reason, 0) + count

    def window(self, reason: str, count: int = 1) -> None:
        if count:
            self.windows[reason] = self.windows.get(reason, 0) + count


@dataclass(slots=True)
class _Open:
    key: str  # in WindowBuilder._open: the session id, or "<start>|<labels>"
    window_key: str  # Window.key: the session id, or the stream's labels
    labels: str
    start_ns: int
    end_ns: int
    deadline: float  # wall clock (the builder's clock, seconds) at which it closes as idle
    events: list[Event] = field(default_factory=list)
    dropped: int = 0


@dataclass(slots=True)
class _Stream:
    newest: int  # the newest event time seen while the stream had open windows
    starts: set[int] = field(default_factory=set)


class WindowBuilder:
    """Assigns events to windows and says which windows closed (module docstring).

    Give exactly one of ``window_secs`` (time windows) and ``session_key`` (sessions).
    ``clock`` is the wall clock in seconds (monotonic); tests pass a fake one.
    """

    def __init__(
        self,
        *,
        window_secs: float | None = None,
        session_key: str | None = None,
        idle_secs: float = 30.0,
        max_open_windows: int = 10_000,
        max_events_per_window: int = 2_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (window_secs is None) == (session_key is None):
            raise ValueError("give exactly one of window_secs and session_key")
        if window_secs is not None and window_secs <= 0:
            raise ValueError("window_secs must be positive")
        if idle_secs <= 0 or max_open_windows < 1 or max_events_per_window < 1:
            raise ValueError("idle_secs, max_open_windows, max_events_per_window must be > 0")
        self.kind: WindowKind = "time" if window_secs is not None else "session"
        self._size_ns = round(window_secs * _NS) if window_secs is not None else 0
        self._regex = session_key_regex(session_key) if session_key is not None else None
        self._idle_s = idle_secs
        self._idle_ns = round(idle_secs * _NS)
        self._max_open = max_open_windows
        self._max_events = max_events_per_window
        self._clock = clock
        self._open: OrderedDict[str, _Open] = OrderedDict()  # least recently active first
        # time kind: per stream, the newest event time and the starts of its open windows
        # (dropped with its last open window), and the end of its last closed window
        self._streams: dict[str, _Stream] = {}
        self._closed_until: OrderedDict[str, int] = OrderedDict()
        self._watermark = -(1 << 62)  # session kind: the newest event time seen
        self.counts = WindowCounts()

    def __len__(self) -> int:
        return len(self._open)

    def take_counts(self) -> WindowCounts:
        """What was added and left out since the last call (and reset)."""
        out, self.counts = self.counts, WindowCounts()
        return out

    def add(self, labels: str, text: str, event: Event) -> list[ClosedWindow]:
        """Add one event of stream ``labels`` (``text``: its line, for session keys);
        returns the windows that closed because of it."""
        if self._regex is None:
            return self._add_timed(labels, event)
        match = self._regex.search(text)
        if match is None:
            self.counts.event("no_session_key")
            return []
        key = match.group(1) if self._regex.groups else match.group(0)
        if key is None:  # an optional group that did not take part
            self.counts.event("no_session_key")
            return []
        return self._add_session(key, labels, event)

    def expire(self) -> list[ClosedWindow]:
        """Close the windows whose wall-clock deadline has passed (quiet streams).

        Scans every open window (call it every fraction of a second, not per event)."""
        now = self._clock()
        due = [w for w in self._open.values() if w.deadline <= now]
        return [self._close(w, "idle") for w in due]

    def close_all(self) -> list[ClosedWindow]:
        """Close every open window (a flush), least recently active first."""
        return [self._close(w, "flush") for w in list(self._open.values())]

    # -- time windows ---------------------------------------------------------------------

    def _add_timed(self, labels: str, event: Event) -> list[ClosedWindow]:
        ts = event.ts_ns
        size = self._size_ns
        start = ts - ts % size
        stream = self._streams.get(labels)
        newest = stream.newest if stream is not None else ts
        if start + size <= self._closed_until.get(labels, -(1 << 62)) or (
            start + size + self._idle_ns <= newest
        ):
            self.counts.event("late")
            return []
        key = f"{start}|{labels}"
        w = self._open.get(key)
        if w is None:
            # the wall-clock deadline: when the window's end comes if event time runs like
            # the wall clock from this first event on, plus the allowed lateness
            until_end_s = (start + size - ts) / _NS
            w = self._new(key, labels, labels, start, start + size, wait_s=until_end_s)
            self._streams.setdefault(labels, _Stream(newest)).starts.add(start)
        self._append(w, event)
        stream = self._streams[labels]
        if ts > stream.newest:
            stream.newest = ts
            if ts >= min(stream.starts) + size + self._idle_ns:  # few starts: one or two
                due = sorted(s for s in stream.starts if s + size + self._idle_ns <= ts)
                return [self._close(self._open[f"{s}|{labels}"], "end") for s in due]
        return []

    # -- sessions -------------------------------------------------------------------------

    def _add_session(self, key: str, labels: str, event: Event) -> list[ClosedWindow]:
        ts = event.ts_ns
        self._watermark = max(self._watermark, ts)
        w = self._open.get(key)
        if w is None:
            w = self._new(key, key, labels, ts, ts + 1, wait_s=0.0)
        else:
            w.start_ns = min(w.start_ns, ts)
            w.end_ns = max(w.end_ns, ts + 1)
            w.deadline = self._clock() + self._idle_s
        self._append(w, event)
        return self._expire_event_time()

    def _expire_event_time(self) -> list[ClosedWindow]:
        """Close sessions idle for ``idle_secs`` of event time, least recently active
        first (stopping at the first one still active: the order is by arrival)."""
        closed: list[ClosedWindow] = []
        while self._open:
            w = next(iter(self._open.values()))
            if w.end_ns - 1 + self._idle_ns > self._watermark:
                break
            closed.append(self._close(w, "idle"))
        return closed

    # -- shared ---------------------------------------------------------------------------

    def _new(
        self, key: str, window_key: str, labels: str, start: int, end: int, *, wait_s: float
    ) -> _Open:
        if len(self._open) >= self._max_open:
            _, evicted = self._open.popitem(last=False)
            self._forget(evicted)
            self.counts.window("max_open_windows")
            self.counts.event("window_evicted", len(evicted.events))
        w = _Open(key, window_key, labels, start, end, self._clock() + wait_s + self._idle_s)
        self._open[key] = w
        return w

    def _append(self, w: _Open, event: Event) -> None:
        if len(w.events) < self._max_events:
            w.events.append(event)
            self.counts.added += 1
        else:
            w.dropped += 1
            self.counts.event("window_full")
        self._open.move_to_end(w.key)

    def _forget(self, w: _Open) -> None:
        """Drop a time window from its stream's open set (and the stream when empty)."""
        stream = self._streams.get(w.labels) if self.kind == "time" else None
        if stream is not None:
            stream.starts.discard(w.start_ns)
            if not stream.starts:
                del self._streams[w.labels]

    def _close(self, w: _Open, reason: str) -> ClosedWindow:
        del self._open[w.key]
        if self.kind == "time":
            self._forget(w)
            until = max(self._closed_until.get(w.labels, w.end_ns), w.end_ns)
            self._closed_until[w.labels] = until
            self._closed_until.move_to_end(w.labels)
            while len(self._closed_until) > self._max_open:
                self._closed_until.popitem(last=False)
        window = Window(
            key=w.window_key,
            start_ns=w.start_ns,
            end_ns=w.end_ns,
            events=tuple(w.events),
            dropped=w.dropped,
        )
        return ClosedWindow(window=window, kind=self.kind, labels=w.labels, reason=reason)
