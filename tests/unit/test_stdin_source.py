"""stdin as a pipeline source: every line stored once, with detected or arrival times."""

from __future__ import annotations

import io
import time
from pathlib import Path

from logpipe.connectors.stdin import StdinSource, StdinSourceConfig

from logpipe.pipeline import BatchLimits, Pipeline, StoreSink
from logpipe.store import Store


def test_lines_from_a_pipe_are_stored_once_with_their_times(tmp_path: Path) -> None:
    long_line = b"2024-03-05 10:00:03,000 DEBUG " + b"x" * 100
    text = (
        b"2024-03-05 10:00:00,001 INFO started\n"
        b"no timestamp here\r\n"
        b"2024-03-05 10:00:02,500 ERROR failed\n" + long_line + b"\n"
        b"2024-03-05 10:00:04,000 INFO last line, no newline"
    )
    store = Store(tmp_path)
    source = StdinSource(StdinSourceConfig(max_line_bytes=50), stream=io.BytesIO(text))
    pipe = Pipeline([source], [], [StoreSink(store, "fake")], limits=BatchLimits(max_age_s=0.05))
    pipe.start()
    deadline = time.monotonic() + 10
    while pipe.stats.lines_out < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    pipe.stop()
    assert pipe.join(10) and pipe.error is None
    rows = [
        (ts, line)
        for batch in store.read("fake", direction="forward")
        for ts, line in zip(
            batch.column("ts").cast("int64").to_pylist(),
            batch.column("line").to_pylist(),
            strict=True,
        )
    ]
    lines = [line for _, line in rows]
    assert (
        lines
        == [
            b"2024-03-05 10:00:00,001 INFO started",
            b"no timestamp here",  # \r\n endings are removed
            b"2024-03-05 10:00:02,500 ERROR failed",
            long_line[:50],  # cut at max_line_bytes, counted
            b"2024-03-05 10:00:04,000 INFO last line, no newline",
        ]
    )
    start = 1_709_632_800_001_000_000  # 2024-03-05T10:00:00.001Z
    assert rows[0][0] == start and rows[1][0] == start  # a line without a time takes the last
    assert store.streams("fake") == [{"source": "stdin"}]
    assert source.finished
