"""Archive operations: compress, decompress, cat, grep and info over the container.

I/O lives here; the byte layout is :mod:`logpipe.archive.container`, the encoding of one
segment is :mod:`logpipe.archive.codec` and its decoding :mod:`logpipe.archive.segment`.
Everything streams segment by segment, so memory is bounded by the segment size, not by the
input. Only ``compress`` needs the parser (numpy, pyarrow): it imports them when called, so
the read commands start in a fraction of the time.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from logpipe import __version__
from logpipe.archive.container import ArchiveError, ArchiveReader, ArchiveWriter, SegmentInfo
from logpipe.archive.segment import SEGMENT_FORMAT, SegmentError, decode_segment, grep_segment
from logpipe.errors import UsageError

if TYPE_CHECKING:
    from logpipe.archive.codec import EncodedSegment
    from logpipe.parsing import TemplateMiner

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "CompressReport",
    "cat",
    "compress",
    "decompress",
    "grep",
    "info",
]

DEFAULT_SEGMENT_BYTES = 8 << 20
FORMAT_NAME = "logpipe-archive"


@dataclass
class CompressReport:
    """What :func:`compress` did."""

    inputs: list[str] = field(default_factory=list)
    input_bytes: int = 0
    output_bytes: int = 0
    lines: int = 0
    verbatim_lines: int = 0
    segments: int = 0

    @property
    def ratio(self) -> float:
        return self.input_bytes / self.output_bytes if self.output_bytes else 0.0


def _segments_of(chunks: Iterator[bytes], segment_bytes: int) -> Iterator[bytes]:
    """Re-cut a byte stream into segments that end at a newline when one is near.

    A segment normally ends at the last newline of its first ``segment_bytes``; a line
    longer than that is cut (the codec records that the segment does not end with a newline,
    so concatenating decoded segments still gives the input back).
    """
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= segment_bytes:
            cut = buf.rfind(b"\n", 0, segment_bytes)
            end = cut + 1 if cut >= 0 else segment_bytes
            yield bytes(buf[:end])
            del buf[:end]
    if buf:
        yield bytes(buf)


def compress(
    inputs: Sequence[str],
    output: Path,
    *,
    level: int = 15,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    progress: Callable[[int], None] | None = None,
) -> CompressReport:
    """Compress ``inputs`` (files, directories, globs, ``-``) into one archive at ``output``.

    The inputs are stored as one byte stream in the given order; ``meta["inputs"]`` lists
    them, and each segment's header says which input its bytes came from.
    """
    # the parser stack (pyarrow, numpy) is only needed to write
    from logpipe.archive import codec  # noqa: PLC0415
    from logpipe.io.inputs import expand_inputs, read_chunks  # noqa: PLC0415
    from logpipe.parsing import TemplateMiner  # noqa: PLC0415

    if segment_bytes < 1:
        raise UsageError("--segment-bytes must be positive")
    sources = expand_inputs(inputs)
    report = CompressReport(inputs=[s.path for s in sources])
    miner = TemplateMiner()
    with (
        _switch_interval(_HANDOFF_SECS),
        ArchiveWriter(
            output,
            {
                "format": FORMAT_NAME,
                "created_by": f"logpipe {__version__}",
                "segment_format": SEGMENT_FORMAT,
                # segment header "input" indexes this list; segments never span two inputs
                "inputs": [s.path for s in sources],
            },
            level=level,
        ) as writer,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        for input_index, source in enumerate(sources):
            for segment in _segments_of(read_chunks(source), segment_bytes):
                lines, ends_with_newline = codec.split_lines(segment)
                extra = {"input": input_index, "bytes": len(segment)}
                encoded = _encode_checked(
                    lines, ends_with_newline, miner, writer=writer, pool=pool, extra=extra
                )
                report.lines += encoded.header["lines"]
                report.verbatim_lines += encoded.header["verbatim"]
                report.segments += 1
                report.input_bytes += len(segment)
                if progress is not None:
                    progress(report.input_bytes)
    report.output_bytes = output.stat().st_size
    return report


# Threads hand work back and forth many times per segment (kernels and zstd release the GIL,
# then need it back); at Python's default 5 ms switch interval a thread leaving C code can
# wait that long for the GIL each time. 1 ms made zstd + the round-trip check 25% faster.
_HANDOFF_SECS = 0.001


@contextlib.contextmanager
def _switch_interval(secs: float) -> Iterator[None]:
    """Run the block with the interpreter's thread switch interval at most ``secs``."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, secs))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _encode_checked(
    lines: list[bytes],
    ends_with_newline: bool,
    miner: TemplateMiner,
    *,
    writer: ArchiveWriter,
    pool: ThreadPoolExecutor,
    extra: dict[str, int],
) -> EncodedSegment:
    """Encode and write one segment, checking the round trip while zstd compresses.

    The check (decode and compare) runs on a worker thread while the writer compresses the
    streams, which releases the GIL. The segment is only written once the check passed; if
    it ever failed, the segment is stored verbatim instead (never observed, never lossy).
    """
    from logpipe.archive.codec import (  # noqa: PLC0415 - see compress()
        encode_segment,
        segment_is_exact,
        verbatim_segment,
    )

    encoded = encode_segment(lines, ends_with_newline, miner, verify=False)
    encoded.header.update(extra)
    check = pool.submit(segment_is_exact, encoded, lines, ends_with_newline)
    staged = writer.prepare_segment(encoded.header, encoded.streams)
    if not check.result():
        encoded = verbatim_segment(lines, ends_with_newline)
        encoded.header.update(extra)
        staged = writer.prepare_segment(encoded.header, encoded.streams)
    writer.write_prepared(staged)
    return encoded


def _open_reader(path: Path, salvage: bool = False) -> ArchiveReader:
    return ArchiveReader(path, salvage=salvage)


@contextlib.contextmanager
def _decoding(path: Path, info: SegmentInfo) -> Iterator[None]:
    """Contents that contradict each other (after every checksum passed) name the segment."""
    try:
        yield
    except (SegmentError, KeyError, TypeError) as exc:
        raise ArchiveError(
            f"cannot decode: {exc}", path=str(path), offset=info.offset, segment=info.index
        ) from None


def _decoded(path: Path, info: SegmentInfo, streams: dict[str, bytes]) -> bytes:
    with _decoding(path, info):
        return decode_segment(info.header, streams)


def decompress(archive: Path, out: BinaryIO, *, salvage: bool = False) -> list[str]:
    """Write the archived bytes to ``out``; return the damage messages (salvage only)."""
    with _open_reader(archive, salvage) as reader:
        for segment in reader:
            out.write(_decoded(archive, segment.info, segment.streams))
        return list(getattr(reader, "damaged", []))


def cat(archive: Path, out: BinaryIO, first: int = 1, last: int | None = None) -> None:
    """Write lines ``first``..``last`` (1-based, inclusive) without decoding other segments."""
    if first < 1 or (last is not None and last < first):
        raise UsageError("line range must be 1-based and ascending, e.g. --lines 10:20")
    with _open_reader(archive) as reader:
        line = 1  # number of the first line starting in the next segment
        continued = False  # the previous segment ended inside a line
        for info in reader.segments:
            header = info.header
            count = int(header["lines"])
            starts_new = 0 if continued else 1
            seg_first = line - (0 if starts_new else 1)
            seg_last = seg_first + count - 1
            continued = not header["ends_with_newline"] and count > 0
            line = seg_last + 1 if not continued else seg_last
            if last is not None and seg_first > last:
                break
            if seg_last < first:
                continue
            data = _decoded(archive, info, reader.read(info.index).streams)
            pieces = data.split(b"\n")
            for offset, text in enumerate(pieces[:count]):
                number = seg_first + offset
                if number < first or (last is not None and number > last):
                    continue
                out.write(text)
                if offset < count - 1 or header["ends_with_newline"]:
                    out.write(b"\n")


def grep(pattern: str, archive: Path, out: BinaryIO, *, line_numbers: bool = False) -> int:
    """Write the lines containing ``pattern`` (a fixed string); return how many matched.

    Each segment is searched in its compressed layout (:func:`grep_segment`): only the
    lines that can match are turned back into text.
    """
    if not pattern:
        raise UsageError("grep needs a non-empty pattern")
    matches = 0
    with _open_reader(archive) as reader:
        line_base = 0
        for info in reader.segments:
            streams = reader.read(info.index).streams
            with _decoding(archive, info):
                hits = grep_segment(info.header, streams, pattern)
            for number, text in hits:
                if line_numbers:
                    out.write(f"{line_base + number + 1}:".encode())
                out.write(text + b"\n")
                matches += 1
            line_base += int(info.header["lines"])
    return matches


def info(archive: Path) -> dict[str, Any]:
    """Segments, templates and compressed/raw size per stream (for ``archive info``)."""
    with _open_reader(archive) as reader:
        streams: dict[str, list[int]] = {}
        segments = []
        for seg in reader.segments:
            segments.append(
                {
                    "index": seg.index,
                    "offset": seg.offset,
                    "bytes_on_disk": seg.length,
                    "input_bytes": seg.header.get("bytes"),
                    "lines": seg.header.get("lines"),
                    "templates": seg.header.get("templates"),
                    "verbatim_lines": seg.header.get("verbatim"),
                }
            )
            for name, (compressed, raw) in seg.stream_sizes.items():
                total = streams.setdefault(name, [0, 0])
                total[0] += compressed
                total[1] += raw
        input_bytes = sum(int(s["input_bytes"] or 0) for s in segments)
        size = archive.stat().st_size
        return {
            "archive": str(archive),
            "meta": reader.meta,
            "bytes": size,
            "input_bytes": input_bytes,
            "ratio": round(input_bytes / size, 3) if size else None,
            "segments": segments,
            "streams": {
                name: {
                    "compressed_bytes": c,
                    "raw_bytes": r,
                    "ratio": round(r / c, 2) if c else None,
                }
                for name, (c, r) in sorted(streams.items())
            },
        }
