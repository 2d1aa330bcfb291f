"""Segment format 2 read side: byte planes, rendering, errors, and no heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.archive.codec import _planes, encode_segment, split_lines
from logpipe.archive.container import ArchiveWriter
from logpipe.archive.segment import (
    SEGMENT_FORMAT,
    SegmentError,
    decode_segment,
    grep_segment,
    parse_int_type,
    unpack_planes,
)
from logpipe.cli import main
from logpipe.parsing import TemplateMiner
from tests.conftest import REPO


@given(
    st.sampled_from([1, 2, 4, 8]),
    st.booleans(),
    st.lists(st.integers(-(2**63), 2**64 - 1), max_size=40),
    st.binary(max_size=5),
)
@settings(max_examples=300, deadline=None)
def test_planes_round_trip(width: int, signed: bool, numbers: list[int], prefix: bytes) -> None:
    bits = 8 * width
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    kept = [n for n in numbers if low <= n <= high]
    dtype = np.int64 if signed else np.uint64
    data = prefix + _planes(np.array(kept, dtype=dtype), width, signed=signed)
    assert unpack_planes(data, len(prefix), len(kept), width, signed=signed) == kept


def test_short_plane_stream_is_an_error() -> None:
    with pytest.raises(SegmentError, match="early"):
        unpack_planes(b"\x01\x02\x03", 0, 2, 2, signed=True)


def test_column_types_are_parsed_strictly() -> None:
    assert parse_int_type("int:d2:17") == (0, "d", 2, 17)
    assert parse_int_type("pad6:v8:-3") == (6, "v", 8, -3)
    assert parse_int_type("int:z1:0") == (0, "z", 1, 0)
    for bad in ("int", "int:d2", "int:x2:0", "int:d3:0", "float:d2:0", "pad:v1:0", "padx:d1:0",
                "int:d1:0:0", "int:d1:x"):  # fmt: skip
        with pytest.raises(SegmentError):
            parse_int_type(bad)


def _segment(data: bytes) -> tuple[dict[str, object], dict[str, bytes]]:
    lines, ends = split_lines(data)
    seg = encode_segment(lines, ends, TemplateMiner())
    assert decode_segment(seg.header, seg.streams) == data
    return seg.header, seg.streams


def test_braces_in_literal_text_render_verbatim() -> None:
    data = b"".join(f"{{json}} id={i} {{{{x}}}} }}{{ done\n".encode() for i in range(100))
    header, _ = _segment(data)
    assert header["verbatim"] == 0


def test_big_numbers_falling_and_scattered_columns_pick_their_types() -> None:
    data = b"".join(
        f"t={10**17 + 7 * i} left={10**6 - i * 999} pid={(i * 7919) % 65536:05d}\n".encode()
        for i in range(300)
    )
    header, streams = _segment(data)
    types = json.loads(streams["dict"])["templates"][0]["types"]
    assert types == [f"int:d1:{10**17}", f"int:z2:{10**6}", "pad5:v2:32768"]
    assert header["verbatim"] == 0


def test_more_than_255_templates_use_two_byte_line_ids() -> None:
    words = [f"w{i:03d}x" for i in range(300)]
    data = b"".join(f"{w} happened {k}\n".encode() for w in words for k in range(2))
    miner = TemplateMiner()
    lines, ends = split_lines(data)
    seg = encode_segment(lines, ends, miner)
    assert decode_segment(seg.header, seg.streams) == data
    if seg.header["templates"] > 255:
        assert seg.header["line_bytes"] == 2
    hits = grep_segment(seg.header, seg.streams, "w299x")
    assert hits == [(598, b"w299x happened 0"), (599, b"w299x happened 1")]


def test_contradicting_streams_are_segment_errors() -> None:
    header, streams = _segment(b"".join(f"req {i} ok\n".encode() for i in range(50)))
    with pytest.raises(SegmentError, match="format"):
        decode_segment({**header, "format": 1}, streams)
    with pytest.raises(SegmentError, match="early"):
        decode_segment(header, {**streams, "ints": streams["ints"][:-1]})
    with pytest.raises(SegmentError, match="dictionary"):
        decode_segment(header, {**streams, "dict": b"{not json"})
    with pytest.raises(SegmentError, match="template"):
        decode_segment(header, {**streams, "lines": bytes([9]) * 50})


def test_a_contradicting_archive_is_a_clear_cli_error(tmp_path: Path) -> None:
    header, streams = _segment(b"".join(f"req {i} ok\n".encode() for i in range(50)))
    archive = tmp_path / "bad.lpz"
    with ArchiveWriter(archive, {"format": "logpipe-archive"}) as writer:
        writer.add_segment(header, {**streams, "ints": b""})
    assert main(["decompress", str(archive), "-o", str(tmp_path / "out")]) == 1
    assert main(["grep", "req", str(archive)]) == 1


def test_read_commands_import_neither_numpy_nor_pyarrow(tmp_path: Path) -> None:
    """The read side's speed rests on this: those imports cost more than the decoding."""
    archive = tmp_path / "s.lpz"
    sample = REPO / "samples" / "shop" / "webshop.log"
    assert main(["compress", str(sample), "-o", str(archive), "--no-progress"]) == 0
    script = (
        "import sys\n"
        "from logpipe.cli import main\n"
        f"for args in (['decompress', {str(archive)!r}, '-o', {str(tmp_path / 'o')!r}],\n"
        f"             ['cat', {str(archive)!r}, '--lines', '2:3'],\n"
        f"             ['grep', 'INFO', {str(archive)!r}]):\n"
        "    assert main(args) == 0, args\n"
        "heavy = sorted(m for m in ('numpy', 'pyarrow') if m in sys.modules)\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, cwd=REPO, check=False, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("[]"), done.stderr
    assert SEGMENT_FORMAT == 2


def _overlaps(pattern: str, pieces: list[str]) -> bool:
    """Reference: some piece holds, lies in, or overlaps an end of the pattern."""
    for piece in filter(None, pieces):
        if pattern in piece or piece in pattern:
            return True
        for k in range(1, min(len(piece), len(pattern))):
            if piece.endswith(pattern[:k]) or piece.startswith(pattern[-k:]):
                return True
    return False


@given(
    st.text("abc", min_size=1, max_size=6),
    st.lists(st.text("abcd", max_size=6), min_size=1, max_size=4),
)
@settings(max_examples=1000, deadline=None)
def test_literal_prefilter_never_misses(pattern: str, pieces: list[str]) -> None:
    from logpipe.archive.segment import literal_may_match

    entry = {"pieces": pieces, "types": ["str"] * (len(pieces) - 1)}
    expected = _overlaps(pattern, pieces) or any(not p for p in pieces[1:-1])
    assert literal_may_match(pattern, entry) == expected
