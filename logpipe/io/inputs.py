"""Reading log inputs: expand paths, open (de)compressed streams, split lines into LogBatches.

Why it looks like this:

* **Expansion is explicit and sorted** (files, directories walked recursively, globs, ``-`` for
  stdin) so that a run is reproducible and output names are predictable.
* **Compression is detected by magic bytes**, not by the file name: rotated logs are often
  ``app.log.1`` gzipped, and a ``.gz`` that is really plain text should still be read.
* **Lines are split in large binary chunks with numpy**, and the Arrow ``binary`` column is
  built straight from buffers: Python never touches a single line, so reading costs a few
  milliseconds per megabyte and memory stays bounded by the chunk size.
* **Nothing is lost silently.** Raw bytes are kept exactly (a trailing ``\\r`` stays in
  ``line``; only the decoded ``content`` drops it). A final line without ``\\n`` is kept. A line
  longer than ``max_line_bytes`` is cut there and flagged (so memory stays bounded) rather than
  dropped. A truncated or corrupt gzip/zstd stream raises :class:`~logpipe.errors.InputError`
  naming the file and the decompressed byte offset, but only after every complete line before
  it has been yielded.
"""

from __future__ import annotations

import glob
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import zstandard

from logpipe.arrowutil import from_numpy
from logpipe.errors import InputError
from logpipe.records import raw_batch

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_LINES",
    "DEFAULT_MAX_LINE_BYTES",
    "InputSource",
    "ReadBatch",
    "detect_compression",
    "expand_inputs",
    "read_batches",
    "read_chunks",
]

DEFAULT_BATCH_LINES = 65_536
DEFAULT_BATCH_BYTES = 8 << 20
#: Lines longer than this are cut (and flagged ``truncated``) so one runaway line without a
#: newline cannot take all memory. Far above any real log line; 1 MB lines pass untouched.
DEFAULT_MAX_LINE_BYTES = 64 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
_GLOB_CHARS = frozenset("*?[")
#: Compressed bytes handed to the decompressor per call. Small enough that even a
#: pathological zstd stream (up to ~32000x expansion) yields bounded output per call.
_ZSTD_FEED_BYTES = 16 << 10
_NEWLINE = 10


@dataclass(frozen=True)
class InputSource:
    """One input to read: a file path, or ``-`` for standard input.

    ``name`` is the base name used for output files (``<name>_structured.csv``): the file's
    basename without a ``.gz``/``.zst`` suffix, ``stdin`` for ``-``, with ``-2``, ``-3``...
    appended when two inputs would otherwise share a name. ``size_bytes`` is the on-disk size
    (compressed, when compressed) for progress bars; ``None`` for stdin.
    """

    path: str
    name: str
    size_bytes: int | None

    @property
    def is_stdin(self) -> bool:
        return self.path == "-"


@dataclass(frozen=True)
class ReadBatch:
    """A raw LogBatch plus what the schema does not carry.

    ``truncated`` is a bool array (True where a line was cut at ``max_line_bytes``), or
    ``None`` when no line of the batch was cut. ``position_bytes`` is how many bytes of the
    underlying (possibly compressed) input had been consumed, for progress reporting.
    """

    batch: pa.RecordBatch
    truncated: pa.Array | None
    position_bytes: int


# --------------------------------------------------------------------------- expansion


def expand_inputs(paths: Sequence[str]) -> list[InputSource]:
    """Turn command-line paths into an ordered list of inputs.

    Files are taken as given; directories are walked recursively in sorted order, skipping
    hidden files and directories (``.git``, editor swap files); a path that does not exist but
    contains ``*``, ``?`` or ``[`` is a glob (``**`` recurses). Duplicates (same real path) are
    read once. Raises :class:`InputError` for a missing path, an empty glob or a directory
    without files, before anything is read.
    """
    found: list[str] = []
    for raw in paths:
        if raw == "-":
            found.append("-")
        elif os.path.isdir(raw):
            files = _walk_dir(raw)
            if not files:
                raise InputError("directory contains no (non-hidden) files", path=raw)
            found.extend(files)
        elif os.path.exists(raw):
            found.append(raw)
        elif _GLOB_CHARS & set(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            files = []
            for match in matches:
                files.extend(_walk_dir(match) if os.path.isdir(match) else [match])
            if not files:
                raise InputError("no file matches this pattern; check the quoting and path")
            found.extend(files)
        else:
            raise InputError("no such file or directory", path=raw)
    return _name_sources(found)


def _walk_dir(root: str) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def _name_sources(found: Sequence[str]) -> list[InputSource]:
    seen_paths: set[str] = set()
    used_names: dict[str, int] = {}
    sources: list[InputSource] = []
    for path in found:
        key = "-" if path == "-" else os.path.realpath(path)
        if key in seen_paths:
            continue
        seen_paths.add(key)
        base = "stdin" if path == "-" else _strip_compression_suffix(Path(path).name)
        count = used_names.get(base, 0) + 1
        used_names[base] = count
        name = base if count == 1 else f"{base}-{count}"
        size = None if path == "-" else os.path.getsize(path)
        sources.append(InputSource(path=path, name=name, size_bytes=size))
    return sources


def _strip_compression_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- decompression


def detect_compression(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``"plain"`` from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "plain"


class _StreamError(Exception):
    """Internal: the decompressor stopped early; the line splitter adds line context."""

    def __init__(self, message: str, produced: int) -> None:
        super().__init__(message)
        self.produced = produced


class _Position:
    """Compressed bytes consumed so far (shared between the decoder and the batch builder)."""

    def __init__(self) -> None:
        self.raw_bytes = 0


def _read(raw: BinaryIO, size: int, pos: _Position) -> bytes:
    data = raw.read(size)
    pos.raw_bytes += len(data)
    return data


def _decompressed_chunks(raw: BinaryIO, chunk_bytes: int, pos: _Position) -> Iterator[bytes]:
    """Yield the decompressed stream in pieces of roughly ``chunk_bytes``."""
    first = _read(raw, chunk_bytes, pos)
    kind = detect_compression(first)
    if kind == "gzip":
        yield from _coalesce(_gunzip(first, raw, chunk_bytes, pos), chunk_bytes)
    elif kind == "zstd":
        yield from _coalesce(_unzstd(first, raw, chunk_bytes, pos), chunk_bytes)
    else:
        data = first
        while data:
            yield data
            data = _read(raw, chunk_bytes, pos)


def _coalesce(pieces: Iterator[bytes], target: int) -> Iterator[bytes]:
    """Join small decompressor outputs into chunks of about ``target`` bytes.

    Fewer, larger chunks mean fewer, larger Arrow batches downstream. On an error from the
    decompressor, what was already decompressed is yielded first, then the error propagates.
    """
    buf: list[bytes] = []
    size = 0
    try:
        for piece in pieces:
            buf.append(piece)
            size += len(piece)
            if size >= target:
                yield b"".join(buf)
                buf, size = [], 0
    except _StreamError:
        if buf:
            yield b"".join(buf)
        raise
    if buf:
        yield b"".join(buf)


def _gunzip(first: bytes, raw: BinaryIO, chunk_bytes: int, pos: _Position) -> Iterator[bytes]:
    """Decompress gzip, including multi-member files (``cat a.gz b.gz``).

    ``max_length`` bounds each output piece, so a gzip bomb cannot blow up memory; zlib checks
    each member's CRC32 and length, so corruption is reported, not passed on.
    """
    produced = 0
    dec = zlib.decompressobj(wbits=31)
    in_member = True
    data = first
    read_size = max(chunk_bytes // 8, 64 << 10)
    while True:
        if not data:
            data = _read(raw, read_size, pos)
            if not data:
                break
        if not in_member:
            # Between members: zero padding is tolerated (as gzip(1) does), a new member starts.
            stripped = data.lstrip(b"\0")
            if not stripped:
                data = b""
                continue
            if not stripped.startswith(GZIP_MAGIC):
                raise _StreamError("unexpected data after the end of the gzip stream", produced)
            data = stripped
            dec = zlib.decompressobj(wbits=31)
            in_member = True
        try:
            out = dec.decompress(data, chunk_bytes)
        except zlib.error as exc:
            raise _StreamError(f"corrupt gzip data ({exc})", produced) from None
        if out:
            produced += len(out)
            yield out
        if dec.eof:
            data = dec.unused_data
            in_member = False
        else:
            data = dec.unconsumed_tail
    if in_member and not dec.eof:
        raise _StreamError(
            "gzip stream is truncated (ends before its end-of-stream marker)", produced
        )


def _unzstd(first: bytes, raw: BinaryIO, chunk_bytes: int, pos: _Position) -> Iterator[bytes]:
    """Decompress zstd, including multiple concatenated frames.

    ``zstandard``'s stream reader stops silently at a truncated frame, so frames are driven by
    hand with ``decompressobj`` and ``eof`` is checked at the end of input.
    """
    produced = 0
    dctx = zstandard.ZstdDecompressor()
    dec = dctx.decompressobj()
    in_frame = True
    data = first
    read_size = max(chunk_bytes // 8, 64 << 10)
    while True:
        if not data:
            data = _read(raw, read_size, pos)
            if not data:
                break
        if not in_frame:
            dec = dctx.decompressobj()
            in_frame = True
        piece, data = data[:_ZSTD_FEED_BYTES], data[_ZSTD_FEED_BYTES:]
        try:
            out = dec.decompress(piece)
        except zstandard.ZstdError as exc:
            raise _StreamError(f"corrupt zstd data ({exc})", produced) from None
        if out:
            produced += len(out)
            yield out
        if dec.eof:
            data = dec.unused_data + data
            in_frame = False
    if in_frame and not dec.eof:
        raise _StreamError("zstd stream is truncated (ends inside a frame)", produced)


# --------------------------------------------------------------------------- line splitting


@dataclass
class _Lines:
    """Complete lines from one buffer: raw bytes, decompressed offsets, cut flags."""

    lines: pa.Array
    offsets: np.ndarray
    truncated: np.ndarray | None


def _split_buffer(buf: bytes, base: int, max_line_bytes: int) -> tuple[_Lines | None, int]:
    """Split ``buf`` at ``\\n``; return the complete lines and where the incomplete tail begins.

    The Arrow array is built from two numpy buffers (newlines removed, end offsets), so the
    cost is a couple of vectorised passes over the bytes whatever the number of lines.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    n = len(newlines)
    if n == 0:
        return None, 0
    tail_start = int(newlines[-1]) + 1
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    lengths = newlines - starts
    offsets = starts + base
    if int(lengths.max()) > max_line_bytes:
        cut = lengths > max_line_bytes
        pieces = [
            buf[s : s + min(ln, max_line_bytes)]
            for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True)
        ]
        return _Lines(pa.array(pieces, pa.binary()), offsets, cut), tail_start
    body = arr[:tail_start]
    data = body[body != _NEWLINE]
    ends = np.empty(n + 1, dtype=np.int32)
    ends[0] = 0
    ends[1:] = newlines - np.arange(n)
    lines = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(ends), pa.py_buffer(data)])
    return _Lines(lines, offsets, None), tail_start


def _single_line(data: bytes, offset: int, cut: bool) -> _Lines:
    return _Lines(
        pa.array([data], pa.binary()),
        np.array([offset], dtype=np.int64),
        np.array([cut]) if cut else None,
    )


def _split_stream(chunks: Iterator[bytes], max_line_bytes: int, path: str) -> Iterator[_Lines]:
    """Turn a stream of byte chunks into arrays of complete lines, in constant memory.

    The incomplete tail of each chunk is carried into the next one. A line that grows past
    ``max_line_bytes`` keeps its first ``max_line_bytes`` bytes (flagged) and the rest is
    skipped up to its newline, so memory is bounded even for a file without any newline.
    """
    pending: list[bytes] = []  # pieces of the current incomplete line
    pending_len = 0
    line_start = 0  # decompressed offset where the current incomplete line starts
    overflow = False  # the current line passed max_line_bytes: skip until its newline
    stream_pos = 0  # decompressed offset of the chunk being handled
    try:
        for chunk in chunks:
            chunk_pos = stream_pos
            stream_pos += len(chunk)
            if not pending and not overflow:
                lines, tail = _split_buffer(chunk, chunk_pos, max_line_bytes)
                if lines is not None:
                    yield lines
                    line_start = chunk_pos + tail
                rest = chunk[tail:]
            else:
                nl = chunk.find(b"\n")
                if nl < 0:
                    rest = chunk
                elif overflow:
                    yield _single_line(b"".join(pending), line_start, True)
                    pending, pending_len, overflow = [], 0, False
                    line_start = chunk_pos + nl + 1
                    lines, tail = _split_buffer(chunk[nl + 1 :], line_start, max_line_bytes)
                    if lines is not None:
                        yield lines
                    line_start += tail
                    rest = chunk[nl + 1 + tail :]
                else:
                    buf = b"".join([*pending, chunk])
                    pending, pending_len = [], 0
                    lines, tail = _split_buffer(buf, line_start, max_line_bytes)
                    if lines is not None:
                        yield lines
                    line_start += tail
                    rest = buf[tail:]
            if rest and not overflow:
                room = max_line_bytes - pending_len
                if len(rest) > room:
                    rest = rest[:room]
                    overflow = True
                pending.append(rest)
                pending_len += len(rest)
    except _StreamError as exc:
        detail = (
            f"every line before byte {line_start} was read"
            if line_start
            else "no complete line was read"
        )
        if pending_len or overflow:
            detail += "; the incomplete line after it was not"
        raise InputError(
            f"{exc}; {detail}. Recompress or re-copy the file, or decompress what is left "
            "and pass the plain text",
            path=path,
            offset=exc.produced,
        ) from None
    if pending or overflow:
        yield _single_line(b"".join(pending), line_start, overflow)


# --------------------------------------------------------------------------- batches


def read_chunks(source: InputSource, chunk_bytes: int = DEFAULT_BATCH_BYTES) -> Iterator[bytes]:
    """The decompressed bytes of ``source`` in pieces of about ``chunk_bytes``, unsplit.

    For consumers that need the exact bytes (the archive). A damaged gzip/zstd stream yields
    everything decompressed before the damage, then raises :class:`InputError` with the
    decompressed byte offset reached.
    """
    raw = _open(source)
    pos = _Position()
    display = "<stdin>" if source.is_stdin else source.path
    try:
        yield from _decompressed_chunks(raw, chunk_bytes, pos)
    except _StreamError as exc:
        raise InputError(
            f"{exc}; everything before it was read. Recompress or re-copy the file",
            path=display,
            offset=exc.produced,
        ) from None
    except OSError as exc:
        raise InputError(f"read failed: {exc.strerror or exc}", path=display) from None
    finally:
        if not source.is_stdin:
            raw.close()


def _open(source: InputSource) -> BinaryIO:
    if source.is_stdin:
        return sys.stdin.buffer
    try:
        return open(source.path, "rb")  # closed by read_batches
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path=source.path) from None


def read_batches(
    source: InputSource,
    *,
    batch_lines: int = DEFAULT_BATCH_LINES,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[ReadBatch]:
    """Stream ``source`` as raw LogBatches of at most ``batch_lines`` lines.

    Each batch holds the lines of about ``batch_bytes`` of decompressed input; ``offset`` is
    the byte offset of each line in the decompressed stream and ``lineno`` counts from 1.
    """
    if batch_lines < 1 or batch_bytes < 1 or max_line_bytes < 1:
        raise ValueError("batch_lines, batch_bytes and max_line_bytes must be positive")
    raw = _open(source)
    pos = _Position()
    display = "<stdin>" if source.is_stdin else source.path
    next_lineno = 1
    try:
        chunks = _decompressed_chunks(raw, batch_bytes, pos)
        for part in _split_stream(chunks, max_line_bytes, display):
            n = len(part.lines)
            for start in range(0, n, batch_lines):
                stop = min(start + batch_lines, n)
                lines = part.lines.slice(start, stop - start)
                batch = raw_batch(
                    lines,
                    source=display,
                    offsets=part.offsets[start:stop],
                    first_lineno=next_lineno,
                )
                truncated = None
                if part.truncated is not None and part.truncated[start:stop].any():
                    truncated = from_numpy(part.truncated[start:stop])
                next_lineno += stop - start
                yield ReadBatch(batch, truncated, pos.raw_bytes)
    except OSError as exc:
        raise InputError(f"read failed: {exc.strerror or exc}", path=display) from None
    finally:
        if not source.is_stdin:
            raw.close()
