"""The ts stream of a segment, the store's segment files and the content index."""

from __future__ import annotations

import numpy as np
import pytest

from logpipe.archive.codec import encode_segment, encode_timestamps
from logpipe.archive.segment import SegmentError, decode_segment, read_timestamps
from logpipe.parsing import TemplateMiner
from logpipe.store.index import ContentIndex, build_index, may_contain
from logpipe.store.segfile import decode_lines, timestamps_array

LINES = [
    f"2024 INFO served block blk_{i} to 10.0.0.{i % 7} in {i * 3} ms".encode() for i in range(50)
]


@pytest.mark.parametrize(
    "ts",
    [
        [1_700_000_000_000_000_000 + i * 1_000_003 for i in range(50)],
        [5] * 50,
        list(range(50, 0, -1)),
        [0, (1 << 62) - 1] * 25,
    ],
)
def test_ts_stream_round_trips_in_python_and_numpy(ts: list[int]) -> None:
    segment = encode_segment(LINES, True, TemplateMiner(), timestamps=ts)
    assert read_timestamps(segment.header, segment.streams) == ts
    assert timestamps_array(segment.header, segment.streams).tolist() == ts
    assert decode_segment(segment.header, segment.streams) == b"".join(x + b"\n" for x in LINES)


def test_without_timestamps_the_segment_is_unchanged() -> None:
    segment = encode_segment(LINES, True, TemplateMiner())
    assert "ts" not in segment.streams and "ts_type" not in segment.header
    assert read_timestamps(segment.header, segment.streams) is None


def test_sorted_timestamps_are_stored_as_differences() -> None:
    kind, data = encode_timestamps(np.arange(1000) * 1_000_000 + 1_700_000_000 * 10**9, 1000)
    assert kind.startswith("int:d4:") and len(data) == 4000


def test_bad_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="2116"):
        encode_timestamps([-1], 1)
    with pytest.raises(ValueError, match="timestamps for"):
        encode_timestamps([1, 2], 3)
    segment = encode_segment(LINES[:2], True, TemplateMiner(), timestamps=[1, 2])
    streams = dict(segment.streams, ts=b"\x00")
    with pytest.raises(SegmentError):
        read_timestamps(segment.header, streams)
    with pytest.raises(SegmentError):
        timestamps_array(segment.header, streams)


def test_decode_lines() -> None:
    lines = [b"", b"a", b"\xff\x00bc", b""]
    assert decode_lines(b"".join(x + b"\n" for x in lines), 4).to_pylist() == lines
    with pytest.raises(SegmentError):
        decode_lines(b"a\nb", 2)


def test_content_index_filters_and_round_trips() -> None:
    lines = [*LINES, b"\xff verbatim bytes XYZZY"]
    segment = encode_segment(lines, True, TemplateMiner())
    index = build_index(segment.header, segment.streams)
    assert ContentIndex.from_json(index.to_json()) == index
    for needle in ["served block", "blk_17 ", "10.0.0.3", "XYZZY", "44", "ms", "ok"]:
        assert may_contain(index, needle), needle
    assert not may_contain(index, "ERROR quux")
    assert not may_contain(index, "a\nb")
    with pytest.raises(ValueError):
        ContentIndex.from_json({"templates": [{"pieces": "x", "int": True}], "trigrams": ""})
