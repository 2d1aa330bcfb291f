"""Log lines into detector events with logpipe's parser: two-phase and online modes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.detect.events import EventParser, read_lines
from logpipe.errors import UsageError

FORMAT = "<Date> <Time> <Level> <Component>: <Content>"


def _line(sec: int, content: str, level: str = "INFO", component: str = "svc") -> str:
    return f"2024-05-01 10:{sec // 60:02d}:{sec % 60:02d}.000 {level} {component}: {content}"


LINES = [
    _line(0, "Received block blk_11 of size 1024 from 10.0.0.1"),
    _line(1, "Received block blk_12 of size 2048 from 10.0.0.2"),
    _line(2, "session opened for user alice.smith by uid 0"),
    _line(3, "Deleting block blk_11 file /data/blk_11"),
    _line(4, "session opened for user bob.jones by uid 1000"),
    _line(5, "Received block blk_13 of size 4096 from 10.0.0.3"),
]


def test_whole_input_gives_final_templates_params_times_and_line_numbers() -> None:
    parsed = EventParser(FORMAT).parse(LINES)
    events = parsed.events()
    assert [e.line_no for e in events] == [1, 2, 3, 4, 5, 6]
    # 2024-05-01T10:00:00Z, one second apart
    assert [e.ts_ns for e in events] == [(1714557600 + i) * 10**9 for i in range(6)]
    received = [e for e in events if e.template.startswith("Received")]
    assert len({e.event_id for e in received}) == 1
    assert received[0].template == "Received block <*> of size <*> from <*>"
    assert received[0].params == ("blk_11", "1024", "10.0.0.1")
    opened = [e for e in events if e.template.startswith("session")]
    assert opened[0].params[0] == "alice.smith" and opened[1].params[0] == "bob.jones"
    assert events[3].params == ("blk_11", "/data/blk_11")
    # the final template reaches the first line too (mined before resolving)
    assert events[0].template == events[5].template
    assert parsed.templates_by_event()[received[0].event_id] == received[0].template
    # equal event ids and templates share one string object
    assert events[0].event_id is events[1].event_id


def test_lines_outside_the_format_are_counted_and_timed_from_the_line_before() -> None:
    lines = [LINES[0], "   at com.example.Thing(Thing.java:42)", LINES[1]]
    parsed = EventParser(FORMAT).parse(lines)
    assert parsed.unmatched == 1 and parsed.untimed == 1
    events = parsed.events()
    assert events[1].ts_ns == events[0].ts_ns
    assert "com.example.Thing" in "".join(events[1].params) + events[1].template


def test_online_mode_continues_from_a_saved_state(tmp_path: Path) -> None:
    trainer = EventParser(FORMAT)
    trained = trainer.parse(LINES).events()
    state = tmp_path / "miner.json"
    trainer.save_state(state)
    ids = {e.template: e.event_id for e in trained}

    scorer = EventParser.from_state(state, FORMAT)
    new = [
        _line(10, "Received block blk_99 of size 512 from 10.0.0.9"),
        _line(11, "Checksum mismatch on volume vol7 at sector 881"),
        _line(12, "session opened for user carol.white by uid 1001"),
    ]
    scored = scorer.parse(new, first_line_no=7).events()
    assert scored[0].event_id == ids["Received block <*> of size <*> from <*>"]
    assert scored[2].event_id == ids[trained[2].template]
    assert scored[1].event_id not in set(ids.values())  # unseen template: a new id
    assert [e.line_no for e in scored] == [7, 8, 9]
    assert scored[0].params == ("blk_99", "512", "10.0.0.9")


def test_chunked_file_reading_numbers_lines_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "app.log.gz"
    path.write_bytes(gzip.compress(("\n".join(LINES) + "\n").encode()))
    assert read_lines(path).to_pylist() == LINES
    chunks = list(EventParser(FORMAT).iter_file(path, chunk_lines=4))
    assert [len(c) for c in chunks] == [4, 2]
    assert [e.line_no for c in chunks for e in c.events()] == list(range(1, 7))
    whole = EventParser(FORMAT).parse_file(path).events()
    online = [e for c in chunks for e in c.events()]
    # online, a template is final for its chunk only: "session opened for user alice.smith"
    # was still a constant when chunk 1 was resolved; "Received block" was generalised in it
    assert online[2].params == ("0",) and whole[2].params == ("alice.smith", "0")
    assert online[0].params == whole[0].params == ("blk_11", "1024", "10.0.0.1")
    assert online[4].params == whole[4].params == ("bob.jones", "1000")


def test_empty_and_binary_input() -> None:
    parser = EventParser(FORMAT)
    assert parser.parse([]).events() == []
    raw = pa.array([LINES[0].encode(), b"2024-05-01 10:00:09.000 INFO svc: bad \xff byte"])
    events = parser.parse(raw).events()
    assert len(events) == 2 and "\ufffd" in "".join(events[1].params) + events[1].template


def test_a_format_without_times_counts_every_line_untimed() -> None:
    parsed = EventParser("<Content>").parse(["disk full on volume 17", "disk full on volume 23"])
    assert parsed.untimed == 2 and parsed.ts_ns.tolist() == [0, 0]
    assert [e.params for e in parsed.events()] == [("17",), ("23",)]


def test_format_is_required_and_single() -> None:
    with pytest.raises(UsageError):
        EventParser()
    with pytest.raises(UsageError):
        EventParser(FORMAT, preset="HDFS")


def test_preset_times_hdfs_lines() -> None:
    line = (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: "
        "PacketResponder 1 for block blk_38 terminating"
    )
    (event,) = EventParser(preset="HDFS").parse([line]).events()
    assert event.ts_ns == 1226262975 * 10**9  # 2008-11-09 20:36:15 UTC
    assert "blk_38" in event.params
