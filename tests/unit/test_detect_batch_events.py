"""LogBatch rows → Events for the online stage: raw lines and parsed batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from logpipe.detect.batch_events import batch_events, text_event_id
from logpipe.records import RAW_SCHEMA, raw_batch

NOW = 1_700_000_000 * 10**9


def test_raw_lines_are_their_own_event_text() -> None:
    lines = [b"user=alice ip=10.0.0.1", b"user=bob ip=10.0.0.2", b"user=alice ip=10.0.0.1"]
    ts = np.array([5, 6, 7], dtype=np.int64)
    batch = raw_batch(lines, labels='{app="auth"}', ts=ts, first_lineno=10)
    rows = batch_events(batch, max_text_bytes=100, now_ns=NOW).rows
    assert [r.labels for r in rows] == ['{app="auth"}'] * 3
    assert [r.event.template for r in rows] == [x.decode() for x in lines]
    assert [r.event.ts_ns for r in rows] == [5, 6, 7]
    assert [r.event.line_no for r in rows] == [10, 11, 12]
    assert all(r.event.params == () for r in rows)
    ids = [r.event.event_id for r in rows]
    assert ids[0] == ids[2] != ids[1]  # same text, same id
    assert ids[0] == text_event_id("user=alice ip=10.0.0.1")


def test_unknown_times_are_the_arrival_time_and_long_lines_are_cut() -> None:
    batch = raw_batch([b"x" * 50, b"caf\xc3\xa9 \xff ok"])
    out = batch_events(batch, max_text_bytes=10, now_ns=NOW)
    assert [r.event.ts_ns for r in out.rows] == [NOW, NOW]
    assert out.truncated == 1
    assert out.rows[0].text == "x" * 10
    assert out.rows[1].text == "café \ufffd ok"  # bad bytes read as U+FFFD, never a crash


def test_parsed_batches_use_template_params_and_ids() -> None:
    raw = raw_batch([b"login user=alice ip=1.2.3.4", b"garbage"], labels='{app="a"}')
    batch = (
        raw.append_column("template", pa.array(["login user=<*> ip=<*>", None]))
        .append_column("params", pa.array([["alice", "1.2.3.4"], []], pa.list_(pa.string())))
        .append_column("template_id", pa.array([7, None], pa.int64()))
    )
    first, second = batch_events(batch, max_text_bytes=1000, now_ns=NOW).rows
    assert (first.event.template, first.event.params) == (
        "login user=<*> ip=<*>",
        ("alice", "1.2.3.4"),
    )
    assert first.event.event_id == "7"
    assert first.text == "login user=alice ip=1.2.3.4"  # session keys are searched in the line
    assert (second.event.template, second.event.params) == ("garbage", ())  # not parsed
    assert second.event.event_id == text_event_id("garbage")


def test_an_empty_batch_has_no_events() -> None:
    empty = pa.RecordBatch.from_pylist([], schema=RAW_SCHEMA)
    assert batch_events(empty, max_text_bytes=10, now_ns=NOW).rows == []
