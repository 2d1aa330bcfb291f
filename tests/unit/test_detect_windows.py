"""Sessions, time windows, bounds, splits and the HDFS/BGL loaders on generated lines."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from logpipe.detect.datasets import bgl_from_lines, hdfs_from_lines, regex_keys
from logpipe.detect.events import EventParser
from logpipe.detect.grouping import Windowing, label_by_key, sessions, time_key, time_windows
from logpipe.detect.splits import chronological_split
from logpipe.detect.windows import Event, Window
from logpipe.errors import UsageError

S = 1_000_000_000


def _ev(ts_s: float, eid: str = "E1", line: int = 0, *params: str) -> Event:
    return Event(int(ts_s * S), eid, f"template {eid}", tuple(params), line)


def test_sessions_group_by_every_key_in_arrival_order_with_bounds_and_labels() -> None:
    events = [
        _ev(5, "E1", 1, "a"),
        _ev(3, "E2", 2, "b"),
        _ev(4, "E3", 3, "a", "b"),  # names two sessions: goes to both
        _ev(6, "E4", 4),  # no key
        _ev(7, "E5", 5, "a"),
        _ev(8, "E6", 6, "a", "a"),  # the same key twice: once
    ]
    labels = [0, 0, 0, 0, 1, 0]
    windows = sessions(events, lambda e: e.params or None, max_events=3, labels=labels)
    by_key = {w.key: w for w in windows}
    assert [w.key for w in windows] == ["b", "a"]  # ordered by first (earliest) event time
    a, b = by_key["a"], by_key["b"]
    assert [e.line_no for e in a.events] == [1, 3, 5]  # arrival order, bounded at 3
    assert a.dropped == 1 and b.dropped == 0
    assert [e.line_no for e in b.events] == [2, 3]
    assert (a.start_ns, a.end_ns) == (4 * S, 8 * S)  # over all its events, dropped ones too
    assert a.label == 1 and b.label == 0  # the anomalous line 5 is in "a" only
    relabelled = label_by_key(windows, {"b"})
    assert [w.label for w in relabelled] == [1, 0]


def _brute_force(events: list[Event], size: int, step: int) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    lo = min(e.ts_ns for e in events) // step - size // step - 1
    hi = max(e.ts_ns for e in events) // step + 1
    for k in range(lo, hi + 1):
        inside = [i for i, e in enumerate(events) if k * step <= e.ts_ns < k * step + size]
        if inside:
            out[k * step] = inside
    return out


@pytest.mark.parametrize(("size", "step"), [(10, 10), (10, 5), (30, 7), (5, 1)])
def test_time_windows_match_a_brute_force_definition(size: int, step: int) -> None:
    rng = random.Random(size * 100 + step)
    # unsorted times with bursts and gaps, some equal
    times = [rng.choice([rng.uniform(0, 40), rng.uniform(500, 520), 1000.0]) for _ in range(60)]
    events = [_ev(t, f"E{i % 4}", i + 1) for i, t in enumerate(times)]
    labels = [1 if i in (7, 33) else 0 for i in range(len(events))]
    windows = time_windows(events, size * S, step * S, labels=labels)
    expected = _brute_force(events, size * S, step * S)
    assert [w.start_ns for w in windows] == sorted(expected)
    for w in windows:
        want = sorted(expected[w.start_ns], key=lambda i: (events[i].ts_ns, i))
        assert [e.line_no - 1 for e in w.events] == want
        assert w.end_ns == w.start_ns + size * S and w.dropped == 0
        assert w.label == int(any(labels[i] for i in want))
        assert w.key == time_key(w.start_ns)


def test_time_windows_bound_counts_drops_and_labels_see_them() -> None:
    events = [_ev(1 + i * 0.01, "E1", i + 1) for i in range(50)]
    labels = [0] * 49 + [1]
    (window,) = time_windows(events, 60 * S, labels=labels, max_events=10)
    assert len(window.events) == 10 and window.dropped == 40
    assert window.label == 1  # the alert is among the dropped events, still labelled


def test_time_windows_reject_bad_sizes_and_accept_empty_input() -> None:
    assert time_windows([], S) == []
    with pytest.raises(UsageError):
        time_windows([_ev(1)], S, 2 * S)  # step larger than size would skip events
    with pytest.raises(UsageError):
        time_windows([_ev(1)], 10_000 * S, S)  # 10,000 windows per event
    with pytest.raises(UsageError):
        time_windows([_ev(1)], 0)
    assert time_key(1_117_838_400 * S) == "2005-06-03T22:40:00Z"
    assert time_key(5 * S + 250_000_000) == "1970-01-01T00:00:05.250000000Z"


def _windows(n: int, size_s: int = 1, anomalous: tuple[int, ...] = ()) -> list[Window]:
    return [
        Window(f"w{i}", i * S, i * S + size_s * S, (_ev(i, "E1", i + 1),), 0, int(i in anomalous))
        for i in range(n)
    ]


def test_chronological_split_sizes_order_and_normal_only_fit_sets() -> None:
    windows = _windows(20, anomalous=(2, 8, 15))
    shuffled = windows[::-1]
    split = chronological_split(shuffled, train_fraction=0.5, validation_fraction=0.2)
    assert [w.key for w in split.test] == [f"w{i}" for i in range(10, 20)]
    assert [w.key for w in split.validation] == ["w9"]  # w8 held out but anomalous
    assert [w.key for w in split.train] == [f"w{i}" for i in range(8) if i != 2]
    assert (split.train_anomalous, split.validation_anomalous, split.purged) == (1, 1, 0)
    assert chronological_split(windows) == chronological_split(shuffled)  # deterministic
    assert "test 10 (1 anomalous)" in split.describe()


def test_purge_drops_windows_straddling_a_cut() -> None:
    windows = _windows(20, size_s=3)  # each overlaps the next two
    split = chronological_split(windows, train_fraction=0.5, validation_fraction=0.2, purge=True)
    test_start = split.test[0].start_ns
    assert all(w.end_ns <= test_start for w in (*split.train, *split.validation))
    val_start = split.validation[0].start_ns
    assert all(w.end_ns <= val_start for w in split.train)
    assert split.purged == 4  # two before each cut
    with pytest.raises(UsageError):
        chronological_split(windows, train_fraction=1.0)


def test_regex_keys_finds_every_block_of_a_line() -> None:
    content = pa.array(
        [
            "Receiving block blk_-12 src: /10.0.0.1",
            "ask 10.0.0.1:50010 to delete blk_1 blk_-2 blk_3",
            "no block here",
        ]
    )
    assert regex_keys(content, r"(?P<key>blk_-?\d+)") == [
        ["blk_-12"],
        ["blk_1", "blk_-2", "blk_3"],
        [],
    ]


RECEIVING = "081109 {t} 143 INFO dfs.DataNode$DataXceiver: Receiving block {b} src: /{ip}:5"
HDFS_LINES = [
    RECEIVING.format(t="203518", b="blk_-16", ip="10.0.0.1"),
    "081109 203519 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /a/job.jar. blk_-16",
    RECEIVING.format(t="203520", b="blk_77", ip="10.0.0.2"),
    "081109 203521 35 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.1:50010 to delete blk_-16 blk_77",
    "081109 203522 19 INFO dfs.DataNode: some line without a block",
]


def test_hdfs_sessions_from_lines() -> None:
    data = hdfs_from_lines(HDFS_LINES, {"blk_77"}, train_fraction=0.5, validation_fraction=0.0)
    by_key = {w.key: w for w in data.windows}
    assert set(by_key) == {"blk_-16", "blk_77"}
    assert [e.line_no for e in by_key["blk_-16"].events] == [1, 2, 4]
    assert [e.line_no for e in by_key["blk_77"].events] == [3, 4]
    assert (by_key["blk_-16"].label, by_key["blk_77"].label) == (0, 1)
    assert data.counts["unkeyed_lines"] == 1
    assert [w.key for w in data.split.train] == ["blk_-16"]
    assert [w.key for w in data.split.test] == ["blk_77"]


def test_bgl_label_column_is_cut_before_parsing() -> None:
    rng = np.random.default_rng(3)
    lines = []
    for i in range(120):
        t = 1_117_838_570 + i * 600 + int(rng.integers(0, 60))
        alert = i in (30, 31, 90)
        label = "KERNDTLB" if alert else "-"
        lines.append(
            f"{label} {t} 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
            f"R02-M1-N0-C:J12-U11 RAS KERNEL {'FATAL' if alert else 'INFO'} "
            f"{'data TLB error interrupt' if alert else 'instruction cache parity error corrected'}"
        )
    data = bgl_from_lines(lines, window_s=3600, step_s=1800)
    assert data.counts["alert_lines"] == 3 and data.counts["unmatched_lines"] == 0
    seen = {e.line_no: e for w in data.windows for e in w.events}
    assert len(seen) == 120
    for event in seen.values():
        text = " ".join((event.template, *event.params))
        assert "KERNDTLB" not in text and not text.startswith("-")
    assert seen[1].ts_ns // S == int(lines[0].split()[1])  # time from the epoch column
    alert_lines = {31, 32, 91}
    for w in data.windows:
        assert w.label == int(any(e.line_no in alert_lines for e in w.events))
    assert sum(w.label == 1 for w in data.windows) >= 3


def test_windowing_recipe_round_trips_and_cuts_parsed_lines() -> None:
    lines = [
        "2024-05-01 10:00:00.000 INFO app: start job=j-1",
        "2024-05-01 10:00:30.000 INFO app: start job=j-2",
        "2024-05-01 10:01:10.000 INFO app: done job=j-1",
        "2024-05-01 10:02:00.000 INFO app: heartbeat",
    ]
    parsed = EventParser("<Date> <Time> <Level> <Component>: <Content>").parse(lines)
    by_job = Windowing("session", key_pattern=r"job=(?P<key>\S+)")
    assert Windowing.from_dict(by_job.to_dict()) == by_job
    assert [(w.key, [e.line_no for e in w.events]) for w in by_job.windows(parsed)] == [
        ("j-1", [1, 3]),
        ("j-2", [2]),
    ]
    minutes = Windowing("time", size_s=60)
    assert [len(w.events) for w in minutes.windows(parsed, labels=[0, 1, 0, 0])] == [2, 1, 1]
    assert [w.label for w in minutes.windows(parsed, labels=[0, 1, 0, 0])] == [1, 0, 0]
    for bad in (
        {"kind": "session", "key_pattern": r"job=(\S+)"},  # no key group
        {"kind": "time"},
        {"kind": "hourly", "size_s": 1},
        {"kind": "time", "size_s": 60, "colour": "red"},
    ):
        with pytest.raises(UsageError):
            Windowing.from_dict(bad)
