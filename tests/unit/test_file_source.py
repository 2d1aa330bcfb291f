"""Tailing files: partial lines, rotation, truncation, checkpoints, multi-line rules."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from logpipe.connectors.files import (
    Checkpoint,
    FileSource,
    FileSourceConfig,
    MultilineAggregator,
    MultilineRule,
)

from logpipe.pipeline import Chunk


def _noop_drain(timeout_s: float) -> bool:
    del timeout_s
    return True


def _source(tmp_path: Path, **kw: object) -> FileSource:
    cfg = FileSourceConfig(
        paths=[str(tmp_path / "app.log*")],
        checkpoint=str(tmp_path / "state" / "files.json"),
        rescan_s=0.0,
        commit_interval_s=0.0,
        **kw,
    )
    src = FileSource(cfg)
    src.open(_noop_drain, lambda key: None)
    return src


def _drain(src: FileSource, polls: int = 3) -> list[Chunk]:
    out: list[Chunk] = []
    for _ in range(polls):
        chunks = src.poll(0.0)
        out += chunks
        src.ack([c.token for c in chunks])
    return out


def _lines(chunks: list[Chunk]) -> list[bytes]:
    return [x for c in chunks for x in c.batch.column("line").to_pylist()]


def test_complete_lines_only_then_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\nthr")
    src = _source(tmp_path)
    chunks = _drain(src)
    assert _lines(chunks) == [b"one", b"two"]
    assert chunks[0].batch.column("offset").to_pylist() == [0, 4]
    labels = chunks[0].batch.column("labels").cast("string")[0].as_py()
    assert labels == f'{{filename="{log}"}}'
    with log.open("ab") as f:
        f.write(b"ee\r\nfour\n")
    assert _lines(_drain(src)) == [b"three", b"four"]
    src.close()


def test_rotation_reads_the_old_file_to_its_end_then_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"a1\n")
    src = _source(tmp_path)
    got = _lines(_drain(src))
    with log.open("ab") as f:
        f.write(b"a2\nlast-unterminated")
    log.rename(tmp_path / "old.1")  # not matched by the glob any more: rotated away
    log.write_bytes(b"b1\n")
    got += _lines(_drain(src, 4))
    assert got == [b"a1", b"a2", b"last-unterminated", b"b1"]
    assert src.events["rotated"] == 1
    src.close()


def test_truncation_restarts_the_file_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"x" * 50 + b"\n" + b"y" * 50 + b"\n")
    src = _source(tmp_path)
    assert len(_lines(_drain(src))) == 2
    with log.open("r+b") as f:
        f.truncate(0)
        f.write(b"new\n")
    assert _lines(_drain(src)) == [b"new"]
    assert src.events["truncated"] == 1
    src.close()


def test_checkpoint_resumes_after_a_restart_and_survives_a_rename(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"1\n2\n")
    src = _source(tmp_path)
    assert _lines(_drain(src)) == [b"1", b"2"]
    src.commit()
    src.close()
    state = json.loads((tmp_path / "state" / "files.json").read_text())
    assert next(iter(state["files"].values()))["offset"] == 4
    with log.open("ab") as f:
        f.write(b"3\n")
    log.rename(tmp_path / "app.log.1")  # rotated while we were down; the glob covers it
    log.write_bytes(b"new\n")
    again = _source(tmp_path)
    assert sorted(_lines(_drain(again))) == [b"3", b"new"]
    again.close()


def test_unacked_lines_are_read_again_after_a_crash(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_bytes(b"1\n2\n")
    src = _source(tmp_path)
    src.poll(0.0)  # read but never acked: the pipeline died before the store write
    src.commit()
    again = _source(tmp_path)
    assert _lines(_drain(again)) == [b"1", b"2"]


def test_damaged_checkpoint_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{nope")
    assert Checkpoint(path).load() == {}
    path.write_text(json.dumps({"format": "other"}))
    assert Checkpoint(path).load() == {}


JAVA = b"""2024-01-01 10:00:00 ERROR boom
java.lang.IllegalStateException: bad
\tat com.x.A.f(A.java:10)
\tat com.x.B.g(B.java:20)
Caused by: java.io.IOException: disk
\t... 3 more
2024-01-01 10:00:01 INFO fine
"""


def test_java_stack_traces_join_their_header_line(tmp_path: Path) -> None:
    rule = MultilineRule(start=r"\d{4}-\d\d-\d\d ", flush_after_s=0.05)
    (tmp_path / "app.log").write_bytes(JAVA)
    src = _source(tmp_path, multiline=rule)
    first = _drain(src)
    assert _lines(first) == [b"\n".join(JAVA.split(b"\n")[:6])]  # last entry held
    assert first[0].token.offset == JAVA.index(b"2024-01-01 10:00:01")  # type: ignore[attr-defined]
    time.sleep(0.06)
    rest = _drain(src)
    assert _lines(rest) == [b"2024-01-01 10:00:01 INFO fine"]
    ts = [c.batch.column("ts")[0].value for c in first + rest]
    assert ts == [1_704_103_200 * 10**9, 1_704_103_201 * 10**9]
    src.close()


def test_continuation_rule_and_entry_bounds() -> None:
    agg = MultilineAggregator(MultilineRule(max_lines=3))
    lines = [b"Exception in main", b"\tat a", b"\tat b", b"\tat c", b"next", b"  more"]
    starts = list(range(0, 60, 10))
    ends = [s + 10 for s in starts]
    out = agg.feed(lines, starts, ends)
    assert out == [(0, 40, b"Exception in main\n\tat a\n\tat b")]
    assert agg.truncated == 1 and agg.held_offset == 40
    assert agg.flush() == [(40, 60, b"next\n  more")]
    assert MultilineAggregator(None).feed([b"a", b" b"], [0, 2], [2, 5]) == [
        (0, 2, b"a"),
        (2, 5, b" b"),
    ]


def test_start_at_end_skips_history(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"old\n")
    src = _source(tmp_path, start_at="end")
    assert _drain(src) == []
    with log.open("ab") as f:
        f.write(b"fresh\n")
    assert _lines(_drain(src)) == [b"fresh"]
    src.close()
    assert os.path.exists(tmp_path / "state" / "files.json")
