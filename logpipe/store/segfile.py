"""One store segment as a file: encode a stream's lines into it, decode it to Arrow.

A store segment is an archive (``logpipe/archive/container.py``) holding exactly one codec
segment with a ``ts`` stream: the container gives it checksums and the atomic temp +
rename write, the codec its template dictionary and columns. The read side here is the
store's hot path, so unlike :mod:`logpipe.archive.segment` it uses numpy: timestamps are
re-interleaved from their byte planes and summed in one vectorised pass, and the decoded
text becomes an Arrow ``binary`` array without a Python object per line.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from logpipe.archive.codec import EncodedSegment, encode_segment
from logpipe.archive.container import ArchiveReader, ArchiveWriter
from logpipe.archive.segment import (
    TS_STREAM,
    SegmentError,
    decode_segment,
    grep_segment,
    parse_int_type,
)
from logpipe.parsing import TemplateMiner
from logpipe.store.grams import build_grams, grams_may_contain

__all__ = [
    "CONT_STREAM",
    "GRAMS_STREAM",
    "SEGMENT_META_FORMAT",
    "decode_lines",
    "encode_lines",
    "may_hold_needles",
    "read_segment_file",
    "timestamps_array",
    "write_segment_file",
]

SEGMENT_META_FORMAT = "logpipe-store-segment"
GRAMS_STREAM = "grams"  # the 8-gram filter (logpipe/store/grams.py); absent in old segments
CONT_STREAM = "cont"  # continuation flags of multi-line entries; absent when there are none


def encode_lines(
    lines: Sequence[bytes], ts: np.ndarray, *, hints: pa.Table | None = None
) -> EncodedSegment:
    """Encode one segment's entries with their timestamps (and, optionally, ``hints``: each
    entry's ``template`` and ``premasked`` form from the daemon's parse stage, which spare
    mining the segment again; entries of several lines are mined here all the same).

    An entry may span lines (a stack trace): the codec stores physical lines, each with the
    entry's timestamp, and a ``cont`` stream marks the lines that continue the entry before
    them (one byte per line, 1 = continuation), so the read side rebuilds the entries
    exactly. A fresh miner per segment: a segment is immutable and self-contained, and
    decoding it never needs another one's state.
    """
    physical: list[bytes] = []
    cont: list[int] = []
    for line in lines:
        parts = line.split(b"\n")
        physical.extend(parts)
        cont.append(0)
        cont.extend([1] * (len(parts) - 1))
    if len(physical) == len(lines):
        templates = hints.column("template").combine_chunks() if hints is not None else None
        masks = None
        if hints is not None and "premasked" in hints.schema.names:
            masks = hints.column("premasked").combine_chunks()
        encoded = encode_segment(
            lines, True, TemplateMiner(), timestamps=ts, templates=templates, premasked=masks
        )
    else:
        counts = np.array([line.count(b"\n") + 1 for line in lines], dtype=np.int64)
        encoded = encode_segment(physical, True, TemplateMiner(), timestamps=np.repeat(ts, counts))
        encoded.streams[CONT_STREAM] = bytes(cont)
    encoded.streams[GRAMS_STREAM] = build_grams(lines)
    return encoded


def _entries(ts: np.ndarray, lines: pa.Array, cont: bytes) -> tuple[np.ndarray, pa.Array]:
    """Physical lines joined back into entries (``cont`` marks the continuations)."""
    flags = np.frombuffer(cont, dtype=np.uint8)
    if len(flags) != len(lines) or (len(flags) and flags[0]):
        raise SegmentError("cont stream does not match the segment's lines")
    starts = np.flatnonzero(flags == 0)
    texts = lines.to_pylist()
    bounds = [*starts.tolist(), len(texts)]
    joined = [b"\n".join(texts[a:b]) for a, b in itertools.pairwise(bounds)]
    return ts[starts], pa.array(joined, pa.binary())


def write_segment_file(
    path: Path, encoded: EncodedSegment, meta: Mapping[str, Any], level: int
) -> None:
    """Write ``encoded`` as a one-segment archive at ``path`` (temp file + fsync + rename)."""
    with ArchiveWriter(path, {"format": SEGMENT_META_FORMAT, **meta}, level=level) as writer:
        writer.add_segment(encoded.header, encoded.streams)


def timestamps_array(header: Mapping[str, Any], streams: Mapping[str, bytes]) -> np.ndarray:
    """The ``ts`` stream as int64 nanoseconds (numpy; the same rules as
    :func:`logpipe.archive.segment.read_timestamps`)."""
    kind = header.get("ts_type")
    if not isinstance(kind, str) or TS_STREAM not in streams:
        raise SegmentError("segment has no ts stream")
    _, mode, width, base = parse_int_type(kind)
    n = int(header["lines"])
    data = streams[TS_STREAM]
    if len(data) != n * width:
        raise SegmentError(f"ts stream holds {len(data)} bytes, not {n} timestamps")
    planes = np.frombuffer(data, dtype=np.uint8).reshape(width, n)
    numbers = np.ascontiguousarray(planes.T).view(f"<i{width}").reshape(n).astype(np.int64)
    if mode == "z":
        numbers = (numbers >> 1) ^ -(numbers & 1)
    if mode != "v" and n:
        numbers[0] += base
        numbers = np.cumsum(numbers)
    elif base:
        numbers += base
    return numbers


def decode_lines(text: bytes, n: int) -> pa.Array:
    """``n`` newline-terminated lines as an Arrow ``binary`` array (no per-line objects)."""
    data = np.frombuffer(text, dtype=np.uint8)
    newline = data == 10
    ends = np.flatnonzero(newline)
    if len(ends) != n or (n and ends[-1] != len(data) - 1):
        raise SegmentError(f"segment decodes to {len(ends)} lines, its header says {n}")
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends - np.arange(n)  # each line's end once the newlines are gone
    body = data[~newline]
    return pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(offsets), pa.py_buffer(body)],
    ).cast(pa.binary())


def read_segment_file(
    file: BinaryIO, name: str, needle: str | None = None
) -> tuple[np.ndarray, pa.Array, np.ndarray | None]:
    """All timestamps, the lines, and which rows they are (``file`` is closed here).

    Without a ``needle`` the lines are all of them (rows ``None``); with one, only those
    containing it, found by ``grep_segment`` on the compressed layout without rendering
    the others.

    Raises :class:`~logpipe.archive.container.ArchiveError` on damage and
    :class:`~logpipe.archive.segment.SegmentError` on contents that do not add up.
    """
    with ArchiveReader(Path(name), file=file) as reader:
        if reader.meta.get("format") != SEGMENT_META_FORMAT or len(reader.segments) != 1:
            raise SegmentError("not a store segment (format or segment count)")
        segment = reader.read(reader.segments[0].index)
    header = segment.info.header
    ts = timestamps_array(header, segment.streams)
    multi_line = CONT_STREAM in segment.streams
    if needle is not None and not multi_line:  # search the compressed layout
        hits = grep_segment(header, segment.streams, needle)
        rows = np.array([row for row, _ in hits], dtype=np.int64)
        return ts, pa.array([line for _, line in hits], pa.binary()), rows
    lines = decode_lines(decode_segment(header, segment.streams), int(header["lines"]))
    if multi_line:
        ts, lines = _entries(ts, lines, segment.streams[CONT_STREAM])
    return ts, lines, None


def may_hold_needles(file: BinaryIO, name: str, needles: Sequence[str]) -> bool:
    """Whether the segment file may hold a line containing every needle (``file`` closed).

    Reads only the segment's 8-gram filter stream; a segment without one may hold anything.
    """
    with ArchiveReader(Path(name), file=file) as reader:
        info = reader.segments[0]
        if GRAMS_STREAM not in info.stream_sizes:
            return True
        stream = reader.read(info.index, [GRAMS_STREAM]).streams[GRAMS_STREAM]
    return all(grams_may_contain(stream, n.encode("utf-8")) for n in needles)
