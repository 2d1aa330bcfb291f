"""Online windows: when time windows and sessions close, and every bound counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.detect.online import ClosedWindow, WindowBuilder, session_key_regex
from logpipe.detect.windows import Event

S = 1_000_000_000
A, B = '{app="a"}', '{app="b"}'


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(ts_s: float, text: str = "x") -> Event:
    return Event(round(ts_s * S), text, text, ())


def feed(b: WindowBuilder, items: list[tuple[str, float, str]]) -> list[ClosedWindow]:
    out: list[ClosedWindow] = []
    for labels, ts_s, text in items:
        out += b.add(labels, text, ev(ts_s, text))
    return out


def spans(closed: list[ClosedWindow]) -> list[tuple[str, int, int, int]]:
    return [
        (c.window.key, c.window.start_ns // S, c.window.end_ns // S, len(c.window.events))
        for c in closed
    ]


def test_time_window_closes_once_its_stream_is_idle_secs_past_its_end() -> None:
    b = WindowBuilder(window_secs=60, idle_secs=5, clock=Clock())
    early = [(A, 0, "a"), (A, 10, "b"), (A, 62, "c"), (A, 59.5, "d"), (A, 64.9, "e")]
    assert feed(b, early) == []  # "d" is out of order, within the allowed lateness
    closed = feed(b, [(A, 65, "f")])
    assert spans(closed) == [(A, 0, 60, 3)]
    assert [e.template for e in closed[0].window.events] == ["a", "b", "d"]
    assert closed[0].reason == "end" and closed[0].kind == "time" and closed[0].labels == A
    # a gap: no empty windows; the next one closes when the stream passes 120 + 5
    assert spans(feed(b, [(A, 185, "g")])) == [(A, 60, 120, 3)]
    assert spans(b.close_all()) == [(A, 180, 240, 1)]
    assert b.take_counts().added == 7


def test_time_windows_are_per_stream() -> None:
    b = WindowBuilder(window_secs=10, idle_secs=1, clock=Clock())
    closed = feed(b, [(A, 1, "a1"), (B, 2, "b1"), (B, 25, "b2"), (A, 5, "a2"), (A, 10.5, "a3")])
    assert spans(closed) == [(B, 0, 10, 1)]  # B's later time does not close A's window
    assert spans(feed(b, [(A, 11, "a4")])) == [(A, 0, 10, 2)]
    assert len(b) == 2  # A [10, 20) and B [20, 30)


def test_quiet_stream_closes_by_the_wall_clock_after_the_grace() -> None:
    clock = Clock(1000.0)
    b = WindowBuilder(window_secs=60, idle_secs=5, clock=clock)
    feed(b, [(A, 10, "a")])  # window [0, 60): its end is 50 s of wall clock away
    clock.now = 1054.9
    assert b.expire() == []
    clock.now = 1055.0
    [closed] = b.expire()
    assert closed.reason == "idle" and spans([closed]) == [(A, 0, 60, 1)]
    assert len(b) == 0


def test_late_events_are_counted_not_windowed() -> None:
    b = WindowBuilder(window_secs=10, idle_secs=2, clock=Clock())
    assert spans(feed(b, [(A, 12, "a"), (A, 25, "b")])) == [(A, 10, 20, 1)]  # 25 >= 20 + 2
    assert feed(b, [(A, 15, "into a closed window"), (A, 3, "older still")]) == []
    assert feed(b, [(A, 23, "out of order, still open")]) == []
    assert b.take_counts().events == {"late": 2}
    assert spans(b.close_all()) == [(A, 20, 30, 2)]


def test_events_beyond_the_window_bound_are_counted() -> None:
    b = WindowBuilder(window_secs=60, max_events_per_window=3, clock=Clock())
    feed(b, [(A, t, f"e{t}") for t in range(5)])
    [closed] = b.close_all()
    assert [e.template for e in closed.window.events] == ["e0", "e1", "e2"]
    assert closed.window.dropped == 2
    counts = b.take_counts()
    assert counts.added == 3 and counts.events == {"window_full": 2}


def test_opening_past_max_open_windows_drops_the_least_recently_active() -> None:
    b = WindowBuilder(window_secs=60, max_open_windows=2, clock=Clock())
    feed(b, [('{s="1"}', 0, "x"), ('{s="2"}', 0, "x"), ('{s="1"}', 1, "y")])
    feed(b, [('{s="3"}', 2, "z")])  # evicts s=2 (s=1 was active since)
    counts = b.take_counts()
    assert counts.windows == {"max_open_windows": 1}
    assert counts.events == {"window_evicted": 1}
    assert sorted(c.window.key for c in b.close_all()) == ['{s="1"}', '{s="3"}']


def test_sessions_close_after_idle_event_time_least_recently_active_first() -> None:
    b = WindowBuilder(session_key=r"blk_-?\d+", idle_secs=10, clock=Clock())
    closed = feed(
        b,
        [(A, 0, "recv blk_1"), (A, 5, "recv blk_1"), (B, 6, "recv blk_-2"), (A, 12, "done blk_1")],
    )
    assert closed == []
    closed = feed(b, [(A, 30, "start blk_3")])  # watermark 30: blk_-2 (6+10) and blk_1 (12+10)
    assert [(c.window.key, c.reason) for c in closed] == [("blk_-2", "idle"), ("blk_1", "idle")]
    blk1 = closed[1].window
    assert (blk1.start_ns, blk1.end_ns) == (0, 12 * S + 1)  # end exclusive
    assert [e.template for e in blk1.events] == ["recv blk_1", "recv blk_1", "done blk_1"]
    assert closed[0].labels == B and closed[1].kind == "session"
    assert [c.window.key for c in b.close_all()] == ["blk_3"]


def test_session_idle_by_the_wall_clock_when_nothing_arrives() -> None:
    clock = Clock(50.0)
    b = WindowBuilder(session_key=r"blk_\d+", idle_secs=3, clock=clock)
    feed(b, [(A, 0, "blk_1 a")])
    clock.now = 52.0
    feed(b, [(A, 0.5, "blk_1 b")])  # activity pushes the deadline to 55
    clock.now = 54.9
    assert b.expire() == []
    clock.now = 55.0
    assert [len(c.window.events) for c in b.expire()] == [2]


def test_session_key_group_and_lines_without_key() -> None:
    b = WindowBuilder(session_key=r"block=(\w+)", clock=Clock())
    feed(b, [(A, 0, "op block=alpha"), (A, 1, "no key here"), (A, 2, "op block=beta")])
    assert b.take_counts().events == {"no_session_key": 1}
    assert sorted(c.window.key for c in b.close_all()) == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("blk_(", "not a valid regular expression"),
        (r"(a)(b)", "at most one capturing group"),
        (r"\d*", "matches the empty string"),
    ],
)
def test_session_key_regex_is_checked(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        session_key_regex(pattern)


def test_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        WindowBuilder()
    with pytest.raises(ValueError, match="exactly one"):
        WindowBuilder(window_secs=1, session_key="k")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([A, B, '{app="c"}']),
            st.integers(0, 400),
            st.sampled_from(["blk_1", "blk_2", "blk_3", "blk_4", "none"]),
        ),
        max_size=80,
    ),
    st.booleans(),
    st.integers(1, 3),
    st.integers(1, 6),
)
def test_every_event_is_in_one_window_or_counted(
    items: list[tuple[str, int, str]], sessions: bool, max_open: int, max_events: int
) -> None:
    """Conservation: each event ends in exactly one closed window or in a drop count."""
    b = WindowBuilder(
        window_secs=None if sessions else 50,
        session_key=r"blk_\d" if sessions else None,
        idle_secs=40,
        max_open_windows=max_open,
        max_events_per_window=max_events,
        clock=Clock(),
    )
    closed: list[ClosedWindow] = []
    for i, (labels, ts, key) in enumerate(items):
        closed += b.add(labels, f"{key} #{i}", ev(ts, f"{key} #{i}"))
        assert len(b) <= max_open
    closed += b.close_all()
    counts = b.take_counts()
    windowed = [e.template for c in closed for e in c.window.events]
    assert len(windowed) == len(set(windowed))  # no event in two windows
    assert all(len(c.window.events) <= max_events for c in closed)
    evicted = counts.events.get("window_evicted", 0)
    assert len(windowed) + sum(counts.events.values()) == len(items)
    assert counts.added == len(windowed) + evicted
    for c in closed:  # every event lies inside its window's span
        assert all(c.window.start_ns <= e.ts_ns < c.window.end_ns for e in c.window.events)
