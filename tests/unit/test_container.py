"""The archive container: round trips, atomic writes, partial reads and damage handling."""

from __future__ import annotations

import itertools
import os
import random
import struct
import tracemalloc
from pathlib import Path

import pytest

from logpipe.archive.container import (
    FILE_MAGIC,
    FOOTER_MAGIC,
    SEG_MAGIC,
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    Segment,
)
from logpipe.errors import InputError, UsageError

Streams = dict[str, bytes]


def sample_segments(count: int = 5) -> list[tuple[dict[str, object], Streams]]:
    """Segments with compressible text, incompressible bytes and an empty stream each."""
    rng = random.Random(count)
    return [
        (
            {"index": i, "templates": ["a <*> b"] * i, "ok": True},
            {
                "lines": b"".join(
                    b"081109 2035%02d INFO dfs.DataNode: block %d\n" % (n % 60, n)
                    for n in range(200 * i)
                ),
                "noise": rng.randbytes(300),
                "empty": b"",
            },
        )
        for i in range(count)
    ]


def write(
    path: Path,
    segments: list[tuple[dict[str, object], Streams]],
    meta: dict[str, object] | None = None,
    level: int = 3,
) -> None:
    with ArchiveWriter(path, meta if meta is not None else {"source": "test"}, level) as writer:
        for header, streams in segments:
            writer.add_segment(header, streams)


def read_all(path: Path, *, salvage: bool = False) -> dict[int, Segment]:
    with ArchiveReader(path, salvage=salvage) as reader:
        return {segment.info.index: segment for segment in reader}


def segment_offsets(path: Path) -> list[tuple[int, int]]:
    with ArchiveReader(path) as reader:
        return [(info.offset, info.length) for info in reader.segments]


# -- round trip -----------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments()
    write(path, segments, meta={"source": "app.log", "n": [1, 2]})
    with ArchiveReader(path) as reader:
        assert reader.meta == {"source": "app.log", "n": [1, 2]}
        assert [info.index for info in reader.segments] == list(range(len(segments)))
        assert reader.damaged == []
        for (header, streams), segment in zip(segments, reader, strict=True):
            assert segment.info.header == header
            assert segment.streams == streams
            assert {k: raw for k, (_, raw) in segment.info.stream_sizes.items()} == {
                k: len(v) for k, v in streams.items()
            }
    # Segments tile the file between the file header and the footer.
    spans = segment_offsets(path)
    for (off, length), (next_off, _) in itertools.pairwise(spans):
        assert off + length == next_off
    assert path.read_bytes()[spans[0][0] :].startswith(SEG_MAGIC)


def test_empty_archive(tmp_path: Path) -> None:
    path = tmp_path / "empty.lpz"
    write(path, [], meta={})
    with ArchiveReader(path) as reader:
        assert reader.meta == {}
        assert reader.segments == []
        assert list(reader) == []


def test_large_streams(tmp_path: Path) -> None:
    """Streams bigger than level 1's 512 KiB window: repeats further back are still found."""
    path = tmp_path / "big.lpz"
    rng = random.Random(7)
    block = rng.randbytes(768 << 10)
    streams = {"repeats": block * 4, "random": rng.randbytes(1 << 20)}
    write(path, [({}, streams)], level=1)
    with ArchiveReader(path) as reader:
        info = reader.segments[0]
        assert info.stream_sizes["repeats"][0] < len(block) * 2  # far repeats were found
        assert info.stream_sizes["random"] == (1 << 20, 1 << 20)  # stored raw
        assert reader.read(0).streams == streams


def test_read_only_named_streams(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments()
    write(path, segments)
    with ArchiveReader(path) as reader:
        segment = reader.read(3, ["noise", "empty"])
        assert segment.streams == {"noise": segments[3][1]["noise"], "empty": b""}
        with pytest.raises(KeyError, match="nope"):
            reader.read(3, ["nope"])
        with pytest.raises(IndexError):
            reader.read(99)
    # Damage in a stream that is not asked for does not matter: it is never read.
    offset, _ = segment_offsets(path)[3]
    with ArchiveReader(path) as reader:
        lines_at = reader._infos[3][1][0].offset  # the "lines" stream's payload
    flip(path, lines_at + 5)
    with ArchiveReader(path) as reader:
        assert reader.read(3, ["noise"]).streams["noise"] == segments[3][1]["noise"]
        with pytest.raises(ArchiveError, match=r"segment 3 at byte \d+: checksum mismatch"):
            reader.read(3)
    assert offset < lines_at


def test_reading_one_segment_does_not_load_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.lpz"
    rng = random.Random(1)
    write(path, [({"i": i}, {"s": rng.randbytes(512 << 10)}) for i in range(16)], level=1)
    assert path.stat().st_size > 8 << 20
    tracemalloc.start()
    try:
        with ArchiveReader(path) as reader:
            segment = reader.read(9)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(segment.streams["s"]) == 512 << 10
    assert peak < 2 << 20


# -- writer contract ------------------------------------------------------------------------


def test_target_appears_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    writer = ArchiveWriter(path, {})
    writer.add_segment({}, {"s": b"x"})
    assert not path.exists()
    assert len(list(tmp_path.iterdir())) == 1  # the temp file, beside the target
    writer.close()
    writer.close()  # idempotent
    assert [p.name for p in tmp_path.iterdir()] == ["a.lpz"]
    with pytest.raises(ValueError, match="closed"):
        writer.add_segment({}, {})


def test_abort_leaves_nothing_and_keeps_an_old_target(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    writer = ArchiveWriter(path, {})
    writer.add_segment({}, {"s": b"x"})
    writer.abort()
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="aborted"):
        writer.close()

    write(path, sample_segments(2))
    before = path.read_bytes()
    with pytest.raises(RuntimeError), ArchiveWriter(path, {}) as writer:
        writer.add_segment({}, {"s": b"new"})
        raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.lpz"]


def test_writer_rejects_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    for level in (0, 23, True, 3.0):
        with pytest.raises(UsageError, match="level"):
            ArchiveWriter(path, {}, level)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meta"):
        ArchiveWriter(path, {"x": object()})
    with ArchiveWriter(path, {}) as writer:
        with pytest.raises(TypeError, match="round trip"):
            writer.add_segment({"t": (1, 2)}, {})
        with pytest.raises(TypeError, match="JSON"):
            writer.add_segment({"f": float("nan")}, {})
        with pytest.raises(TypeError, match="bytes"):
            writer.add_segment({}, {"s": "text"})  # type: ignore[dict-item]
        writer.add_segment({"ok": 1}, {"s": b"x"})
    with ArchiveReader(path) as reader:
        assert [info.header for info in reader.segments] == [{"ok": 1}]


# -- foreign and damaged files --------------------------------------------------------------


def flip(path: Path, offset: int, mask: int = 0x20) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"PK\x03\x04 not ours at all", "wrong magic"),
        (FILE_MAGIC[:5], "truncated"),
        (FILE_MAGIC + struct.pack("<H", 7) + b"\0" * 30, "unsupported archive format version 7"),
    ],
)
def test_foreign_files(tmp_path: Path, content: bytes, message: str) -> None:
    """Magic and version are checked first and are fatal even when salvaging."""
    path = tmp_path / "x.lpz"
    path.write_bytes(content)
    for salvage in (False, True):
        with pytest.raises(ArchiveError, match=message) as info:
            ArchiveReader(path, salvage=salvage)
        assert isinstance(info.value, InputError)
        assert str(info.value).startswith(str(path))


def test_truncated_file_header(tmp_path: Path) -> None:
    path = tmp_path / "x.lpz"
    path.write_bytes(FILE_MAGIC + struct.pack("<H", 1) + b"\0" * 4)
    with pytest.raises(ArchiveError, match="at byte 14: file header truncated"):
        ArchiveReader(path)
    with ArchiveReader(path, salvage=True) as reader:
        assert reader.segments == []
        assert reader.damaged


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot open"):
        ArchiveReader(tmp_path / "nope.lpz")


def test_error_names_segment_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    write(path, sample_segments())
    with ArchiveReader(path) as reader:
        entry = next(e for e in reader._infos[3][1] if e.name == "noise")
    flip(path, entry.offset + 10)
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError) as info:
        reader.read(3)
    assert str(info.value) == (
        f"{path}: segment 3 at byte {entry.offset}: checksum mismatch in stream 'noise'"
    )
    assert (info.value.segment, info.value.offset) == (3, entry.offset)


def test_damaged_segment_header_fails_on_open(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    write(path, sample_segments())
    offset, _ = segment_offsets(path)[2]
    flip(path, offset + 40)
    with pytest.raises(ArchiveError, match=rf"segment 2 at byte {offset}: .*checksum"):
        ArchiveReader(path)


def test_truncated_at_segment_boundary_is_an_error_unless_salvaging(tmp_path: Path) -> None:
    """Without the footer, nothing proves no segment is missing: normal mode must refuse."""
    path = tmp_path / "a.lpz"
    segments = sample_segments()
    write(path, segments)
    offset, length = segment_offsets(path)[2]
    path.write_bytes(path.read_bytes()[: offset + length])
    with pytest.raises(ArchiveError, match=rf"segment 3 at byte {offset + length}: .*salvage"):
        ArchiveReader(path)
    got = read_all(path, salvage=True)
    assert sorted(got) == [0, 1, 2]
    assert all(got[i].streams == segments[i][1] for i in got)


def test_damaged_footer_falls_back_to_scanning(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments()
    write(path, segments)
    data = path.read_bytes()
    footer = data.rindex(FOOTER_MAGIC)
    for at in (footer + 20, len(data) - 1):  # an offset in the index, the end marker
        damaged = bytearray(data)
        damaged[at] ^= 1
        path.write_bytes(bytes(damaged))
        got = read_all(path)
        assert [got[i].streams for i in range(5)] == [s for _, s in segments]
        with ArchiveReader(path, salvage=True) as reader:
            assert len(reader.segments) == 5
            assert reader.lost == []
            assert len(reader.damaged) == 1  # the index itself


@pytest.mark.parametrize("where", ["header", "payload"])
@pytest.mark.parametrize("footer", [True, False])
def test_salvage_skips_a_damaged_middle_segment(tmp_path: Path, where: str, footer: bool) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments(7)
    write(path, segments)
    offset, length = segment_offsets(path)[3]
    data = bytearray(path.read_bytes())
    hit = offset + (20 if where == "header" else length - 10)
    data[hit] ^= 0xFF
    if not footer:
        data = data[: data.rindex(FOOTER_MAGIC)]
    path.write_bytes(bytes(data))
    # Payload damage is found on read (segment 3) or, without a footer, on open (no index).
    with pytest.raises(ArchiveError, match=r"segment [37] at byte \d+"):
        read_all(path)
    with ArchiveReader(path, salvage=True) as reader:
        assert [info.index for info in reader.segments] == [0, 1, 2, 4, 5, 6]
        assert reader.lost == [3]
        assert any("segment 3 at byte" in message for message in reader.damaged)
        for segment in reader:
            assert segment.streams == segments[segment.info.index][1]
        with pytest.raises(ArchiveError, match=r"segment 3.*skipped"):
            reader.read(3)


def test_salvage_resyncs_after_garbage(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments(4)
    write(path, segments)
    offset, _ = segment_offsets(path)[2]
    data = path.read_bytes()
    garbage = random.Random(3).randbytes(5000)
    path.write_bytes(data[:offset] + garbage + data[offset:])
    with pytest.raises(ArchiveError):
        read_all(path)
    got = read_all(path, salvage=True)
    assert sorted(got) == [0, 1, 2, 3]
    assert all(got[i].streams == segments[i][1] for i in got)


def test_salvage_ignores_archives_stored_inside_streams(tmp_path: Path) -> None:
    """A nested archive's segments have the right magic but another id: never adopted."""
    inner = tmp_path / "inner.lpz"
    write(inner, [({"inner": True}, {"s": b"inner data"})])
    path = tmp_path / "outer.lpz"
    write(path, [({"i": 0}, {"s": b"x"}), ({"i": 1}, {"nested": inner.read_bytes()})], level=1)
    offset, _ = segment_offsets(path)[1]
    flip(path, offset + 20)  # outer segment 1's header: salvage must resync past it
    with ArchiveReader(path, salvage=True) as reader:
        assert [info.header for info in reader.segments] == [{"i": 0}]
        assert reader.lost == [1]


def test_salvage_without_file_header(tmp_path: Path) -> None:
    path = tmp_path / "a.lpz"
    segments = sample_segments(3)
    write(path, segments, meta={"m": 1})
    flip(path, 30)  # inside the meta JSON
    with pytest.raises(ArchiveError, match="file header checksum"):
        ArchiveReader(path)
    for strip_footer in (False, True):
        if strip_footer:
            data = path.read_bytes()
            path.write_bytes(data[: data.rindex(FOOTER_MAGIC)])
        with ArchiveReader(path, salvage=True) as reader:
            assert reader.meta == {}
            assert [s.streams for s in reader] == [s for _, s in segments]
            assert any("file header" in message for message in reader.damaged)


def test_fsync_failure_aborts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    writer = ArchiveWriter(tmp_path / "a.lpz", {})
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O"):
        writer.close()
    assert list(tmp_path.iterdir()) == []
