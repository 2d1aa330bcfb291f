"""The archive container: file layout, checksums, atomic writes and damage handling.

An archive is a file of independent *segments*. Each segment carries a small JSON header
(``dict``) and named binary *streams* (``bytes``); the container compresses each stream with
zstd, checksums it, and can find every intact segment of a damaged file (salvage). What the
streams *mean* (templates, variable columns, timestamps) is the codec's business, one layer up;
this module only guarantees that what comes out is exactly what went in, or an
:class:`ArchiveError` that says where it is not.

The byte layout is specified in ``docs/FORMAT.md`` (section "Container"); in short::

    file header   FILE_MAGIC, version, flags, archive id, meta JSON (CRC-32)
    segment 0     sync marker (SEG_MAGIC + archive id), index, lengths, header JSON (CRC-32),
                  stream payloads (each CRC-32'd, zstd or stored raw)
    segment 1 ...
    footer        FOOTER_MAGIC + archive id, segment offsets, CRC-32, END_MAGIC

Why this shape:

* Segments are self-delimiting (marker + lengths) so a reader that lost the footer can walk
  them from the first one, and *locatable* through the footer so a reader that has it seeks
  straight to segment ``i`` without touching the others (memory bounded by one segment).
* The sync marker holds a random per-archive id (as Avro's sync marker does) so that salvage,
  resynchronising after garbage, never locks onto a segment of *another* archive that happens
  to be stored inside a stream of this one (zstd keeps incompressible data verbatim).
* Every byte that decides what a reader returns is under a checksum: the meta and the segment
  headers (which carry the lengths) are checked when the archive is opened, each stream's
  stored bytes before it is decompressed (so garbage never reaches the decoder), and zstd's own
  frame checksum checks the decoder's output. Damage is therefore an error, never silent data.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import zstandard

from logpipe.errors import InputError, UsageError

__all__ = ["ArchiveError", "ArchiveReader", "ArchiveWriter", "Segment", "SegmentInfo"]

#: First 8 bytes of every archive. PNG's trick: the high-bit byte catches 7-bit transports,
#: ``\r\n`` catches newline translation, ``\x1a`` stops ``type`` on DOS.
FILE_MAGIC = b"\x89LPZ\r\n\x1a\n"
#: Start of every segment's sync marker (followed by the 8-byte archive id).
SEG_MAGIC = b"\x89LPZseg\n"
#: Start of the footer (followed by the 8-byte archive id).
FOOTER_MAGIC = b"\x89LPZidx\n"
#: Last 8 bytes of a complete archive.
END_MAGIC = b"\x89LPZend\n"
#: The container version this module writes and the only one it reads. The first 10 bytes
#: (magic + version) are fixed for every version, so any reader can say "version N" clearly.
VERSION = 1

# magic, version, flags, archive id, meta length, CRC-32 of bytes 8..24 + meta
_FILE_HEAD = struct.Struct("<8sHH8sII")
# SEG_MAGIC, archive id, index, header length, payload length, CRC-32 of bytes 16..32 + header
_SEG_HEAD = struct.Struct("<8s8sIIQI")
# FOOTER_MAGIC, archive id, segment count (then count x u64 offsets)
_FOOT_HEAD = struct.Struct("<8s8sI")
# footer start, CRC-32 of footer start .. this field's end, END_MAGIC
_TAIL = struct.Struct("<QI8s")
_OFFSET = struct.Struct("<Q")

#: A JSON header larger than this is damage, not data: refuse before allocating for it.
MAX_JSON_BYTES = 64 << 20
#: Largest zstd window we write (and accept): 128 MiB, zstd's default decoder limit, so the
#: standard ``zstd -d`` can decode any stream without ``--long``/``--memory`` flags.
MAX_WINDOW_LOG = 27
_SCAN_CHUNK = 1 << 20


class ArchiveError(InputError):
    """A damaged, truncated or foreign archive; the message names the segment and offset.

    ``str(err)`` reads ``"archive.lpz: segment 3 at byte 1048576: checksum mismatch in stream
    'values'"``; ``path``, ``offset`` and ``segment`` (``None`` when the damage is outside any
    segment, or the segment's own index is unreadable) carry the same facts for programs.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        segment: int | None = None,
    ) -> None:
        if segment is None:
            super().__init__(message, path=path, offset=offset)
        else:
            where = f"segment {segment}" + (f" at byte {offset}" if offset is not None else "")
            super().__init__(f"{path}: {where}: {message}" if path else f"{where}: {message}")
            self.path = path
            self.offset = offset
        self.segment = segment


@dataclass(frozen=True)
class SegmentInfo:
    """Where a segment lies and what its header says (no stream is decompressed)."""

    index: int
    offset: int  # byte offset of the segment in the archive file
    length: int  # bytes on disk
    header: dict[str, Any]
    stream_sizes: dict[str, tuple[int, int]]  # name -> (compressed, raw) bytes


@dataclass(frozen=True)
class Segment:
    info: SegmentInfo
    streams: dict[str, bytes]  # decompressed, checksum verified


@dataclass(frozen=True)
class _Stream:
    """One row of a segment's stream table, with its absolute file offset resolved."""

    name: str
    codec: str
    offset: int
    length: int
    raw_length: int
    crc32: int


def _dump_json(value: Mapping[str, Any], what: str) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON that decodes back to an equal ``dict``.

    Checked on write so the round trip is exact: tuples, non-string keys or NaN would come
    back different (or not at all), and a reader must never see something else than was given.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    plain = dict(value)
    try:
        blob = json.dumps(plain, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
    if json.loads(blob) != plain:
        raise TypeError(f"{what} does not survive a JSON round trip (tuples or non-str keys?)")
    data = blob.encode("ascii")  # ensure_ascii: lone surrogates survive as \\ud800 escapes
    if len(data) > MAX_JSON_BYTES:
        raise TypeError(f"{what} is {len(data)} bytes of JSON; the limit is {MAX_JSON_BYTES}")
    return data


def _compressor_params(level: int, size: int) -> zstandard.ZstdCompressionParameters:
    """zstd parameters for one stream of ``size`` bytes at ``level``.

    The window covers the whole stream (up to 128 MiB): ``source_size`` shrinks it for small
    streams (less decoder memory), and a stream larger than the level's own window (512 KiB at
    level 1) gets a wider one, which costs no measurable speed and finds every repeat.
    Long-distance matching stays off: on 1 MiB log streams it cost 45% of level-1 speed for
    1% smaller output (docs/FORMAT.md), since log repeats are mostly near each other.
    """
    params = zstandard.ZstdCompressionParameters.from_level(level, source_size=size)
    window_log = max(int(params.window_log), min(MAX_WINDOW_LOG, (size - 1).bit_length()))
    return zstandard.ZstdCompressionParameters.from_level(
        level, source_size=size, window_log=window_log, write_checksum=1, write_content_size=1
    )


class ArchiveWriter:
    """Writes segments to ``path`` via a temp file renamed on :meth:`close`.

    The temp file lives in the target's directory (a rename is atomic only within one file
    system) and is fsync'd before the rename, and the directory after it, so the target path
    holds either nothing (or its previous file) or a complete archive, even across a crash.
    Use as a context manager: a clean exit closes, an exception aborts.
    """

    def __init__(self, path: Path, meta: Mapping[str, Any], level: int = 19) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 22:
            raise UsageError(f"zstd level must be an integer from 1 to 22, not {level!r}")
        self.path = Path(path)
        self.level = level
        meta_json = _dump_json(meta, "archive meta")
        self._archive_id = os.urandom(8)  # not secrets: its import alone costs 4 ms
        self._tmp, self._file = self._open_temp()
        self._offsets: list[int] = []
        self._state = "open"
        fixed = _FILE_HEAD.pack(FILE_MAGIC, VERSION, 0, self._archive_id, len(meta_json), 0)
        crc = zlib.crc32(meta_json, zlib.crc32(fixed[8:24]))
        self._write(fixed[:24] + struct.pack("<I", crc) + meta_json)

    def _open_temp(self) -> tuple[Path, BinaryIO]:
        """Create a fresh temp file beside the target (mode 0o666 minus umask, like open())."""
        for _ in range(100):
            tmp = self.path.with_name(f".{self.path.name}.{os.urandom(6).hex()}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            return tmp, os.fdopen(fd, "wb")
        raise FileExistsError(f"could not create a temp file beside {self.path}")

    def _write(self, data: bytes) -> None:
        """Write, and abort on an I/O error (a half-written temp file is useless)."""
        try:
            self._file.write(data)
        except OSError:
            self.abort()
            raise

    def _pos(self) -> int:
        return self._file.tell()

    def add_segment(self, header: Mapping[str, Any], streams: Mapping[str, bytes]) -> None:
        """Compress, checksum and append one segment.

        All encoding happens before the first byte is written, so a bad argument (a header
        that is not JSON, a stream that is not bytes) raises without damaging the archive.
        """
        self.write_prepared(self.prepare_segment(header, streams))

    def prepare_segment(
        self, header: Mapping[str, Any], streams: Mapping[str, bytes]
    ) -> tuple[bytes, list[bytes]]:
        """Compress and checksum a segment without writing it (see :meth:`write_prepared`).

        Separate so a caller can decide, after compression, whether to write it at all.
        """
        if self._state != "open":
            raise ValueError(f"archive writer for {self.path} is {self._state}")
        table: list[dict[str, Any]] = []
        payloads: list[bytes] = []
        offset = 0
        for name, data in streams.items():
            if not isinstance(name, str):
                raise TypeError(f"stream names must be str, not {type(name).__name__}")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"stream {name!r} must be bytes, not {type(data).__name__}")
            raw = bytes(data)
            stored = zstandard.ZstdCompressor(
                compression_params=_compressor_params(self.level, len(raw))
            ).compress(raw)
            codec = "zstd"
            if len(stored) >= len(raw):
                # Incompressible (or empty): keep it as is, which is smaller and free to read.
                stored, codec = raw, "raw"
            table.append(
                {
                    "name": name,
                    "codec": codec,
                    "offset": offset,
                    "length": len(stored),
                    "raw_length": len(raw),
                    "crc32": zlib.crc32(stored),
                }
            )
            payloads.append(stored)
            offset += len(stored)
        user = _dump_json(header, "segment header")
        head_json = (
            b'{"header":'
            + user
            + b',"streams":'
            + json.dumps(table, separators=(",", ":")).encode("ascii")
            + b"}"
        )
        if len(head_json) > MAX_JSON_BYTES:
            raise TypeError(f"segment header with its stream table exceeds {MAX_JSON_BYTES} bytes")
        return head_json, payloads

    def write_prepared(self, prepared: tuple[bytes, list[bytes]]) -> None:
        """Append a segment made by :meth:`prepare_segment`."""
        if self._state != "open":
            raise ValueError(f"archive writer for {self.path} is {self._state}")
        head_json, payloads = prepared
        index = len(self._offsets)
        total = sum(len(p) for p in payloads)
        fixed = _SEG_HEAD.pack(SEG_MAGIC, self._archive_id, index, len(head_json), total, 0)
        crc = zlib.crc32(head_json, zlib.crc32(fixed[16:32]))
        self._offsets.append(self._pos())
        self._write(fixed[:32] + struct.pack("<I", crc) + head_json)
        for stored in payloads:
            self._write(stored)

    def close(self) -> None:
        """Write the footer, make the file durable and rename it onto ``path``.

        Closing twice is a no-op; closing after :meth:`abort` is an error.
        """
        if self._state == "closed":
            return
        if self._state != "open":
            raise ValueError(f"archive writer for {self.path} was aborted")
        footer_start = self._pos()
        body = _FOOT_HEAD.pack(FOOTER_MAGIC, self._archive_id, len(self._offsets)) + b"".join(
            _OFFSET.pack(off) for off in self._offsets
        )
        start = _OFFSET.pack(footer_start)
        crc = zlib.crc32(start, zlib.crc32(body))
        self._write(body + _TAIL.pack(footer_start, crc, END_MAGIC))
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError:
            self.abort()
            raise
        self._state = "closed"
        _fsync_dir(self.path.parent)

    def abort(self) -> None:
        """Drop the temp file; the target path is left untouched.

        A no-op after :meth:`close` (the archive is already in place) or a second abort.
        """
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._file.close()  # may fail flushing (disk full): the unlink must still happen
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fsync_dir(directory: Path) -> None:
    """Persist a rename: on POSIX the directory entry is only durable once the dir is synced."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms that cannot open directories; the rename itself has happened
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


class _DamageError(Exception):
    """Internal: a check failed at ``offset``. ``resume`` is where the next segment starts
    when the damaged segment's lengths are still trustworthy (its header checksum passed)."""

    def __init__(
        self, message: str, offset: int, segment: int | None = None, resume: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.segment = segment
        self.resume = resume


class ArchiveReader:
    """Reads an archive; ``salvage=True`` skips damaged segments instead of failing.

    Opening reads the file header, the footer and every segment *header* (a seek and a small
    read each), never a stream: :meth:`read` seeks to the streams it is asked for, so memory is
    bounded by one segment whatever the file size. Without the footer (truncated file, damaged
    index) the segments are walked from the first one using their lengths.

    Normal mode raises :class:`ArchiveError` on any damage that could change what is returned,
    including a file that ends cleanly after a segment but lacks its footer (segments may be
    missing, and nothing else could tell). ``salvage=True`` instead verifies every stream
    checksum on open, skips each damaged segment (resynchronising on the next sync marker after
    garbage) and lists what was lost in :attr:`damaged` (messages) and :attr:`lost` (indices).

    ``SegmentInfo.index`` and :meth:`read`'s argument are the index the writer gave the
    segment, so in a salvaged archive they stay stable even when segments before are lost.
    Not thread-safe: share nothing, open one reader per thread.
    """

    def __init__(self, path: Path, *, salvage: bool = False, file: BinaryIO | None = None) -> None:
        self.path = Path(path)
        self._name = str(path)
        self._salvage = salvage
        self.damaged: list[str] = []
        self.lost: list[int] = []
        self._meta: dict[str, Any] = {}
        self._infos: dict[int, tuple[SegmentInfo, list[_Stream]]] = {}
        self._decoder = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG)
        self._file: BinaryIO
        if file is not None:
            # any seekable binary file (a pyarrow.fs input file of an object store): the
            # reader owns it from here and closes it; ``path`` only names it in messages
            self._file = file
        else:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            except OSError as exc:
                raise ArchiveError(f"cannot open: {exc.strerror}", path=self._name) from exc
        try:
            self._size = self._file.seek(0, os.SEEK_END)
            self._load()
        except BaseException:
            self._file.close()
            raise

    # -- public --------------------------------------------------------------------------

    @property
    def meta(self) -> dict[str, Any]:
        """The writer's ``meta`` mapping (``{}`` when salvage could not read the header)."""
        return self._meta

    @property
    def segments(self) -> list[SegmentInfo]:
        """Readable segments in index order (in salvage mode, only the intact ones)."""
        return [self._infos[i][0] for i in sorted(self._infos)]

    def read(self, index: int, names: list[str] | None = None) -> Segment:
        """Decompress segment ``index``'s streams (only ``names`` when given), verified.

        Only the requested streams are read from disk and decoded: this is how ``grep`` skips
        the variable columns of templates that cannot match.
        """
        if index not in self._infos:
            if index in self.lost:
                raise ArchiveError(
                    "segment is damaged and was skipped by salvage",
                    path=self._name,
                    segment=index,
                )
            raise IndexError(f"{self._name} has no segment {index}")
        info, table = self._infos[index]
        if names is None:
            wanted = table
        else:
            by_name = {entry.name: entry for entry in table}
            missing = [name for name in names if name not in by_name]
            if missing:
                raise KeyError(
                    f"segment {index} of {self._name} has no stream {missing[0]!r} "
                    f"(it has {sorted(by_name)})"
                )
            wanted = [by_name[name] for name in names]
        streams: dict[str, bytes] = {}
        for entry in wanted:
            try:
                streams[entry.name] = self._decode(entry, self._stored(entry))
            except _DamageError as damage:
                raise ArchiveError(
                    damage.message, path=self._name, offset=damage.offset, segment=index
                ) from None
        return Segment(info, streams)

    def __iter__(self) -> Iterator[Segment]:
        for info in self.segments:
            yield self.read(info.index)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- loading -------------------------------------------------------------------------

    def _fail(self, damage: _DamageError) -> None:
        """Raise in normal mode; in salvage mode, note the damage and carry on."""
        error = ArchiveError(
            damage.message, path=self._name, offset=damage.offset, segment=damage.segment
        )
        if not self._salvage:
            raise error from None
        self.damaged.append(str(error))

    def _read_at(self, offset: int, size: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(size)

    def _load(self) -> None:
        archive_id, data_start = self._load_header()
        footer: tuple[bytes, list[int], int] | None = None
        footer_damage = _DamageError("archive has no index", self._size)
        try:
            footer = self._load_footer(archive_id)
        except _DamageError as damage:
            if self._salvage:
                self._fail(damage)
            footer_damage = damage
        if footer is not None:
            archive_id, offsets, footer_start = footer
            self._load_indexed(archive_id, offsets, footer_start, data_start)
        elif self._salvage:
            self._load_salvage_scan(archive_id, data_start)
        else:
            self._load_strict_scan(archive_id, data_start, footer_damage)

    def _load_header(self) -> tuple[bytes | None, int | None]:
        """Check magic and version (always fatal) and read the meta (fatal unless salvaging).

        Returns the archive id and where segment 0 starts, ``None`` for both when the header
        is damaged and salvage goes on without it.
        """
        head = self._read_at(0, _FILE_HEAD.size)
        if not head:
            raise ArchiveError("empty file, not a logpipe archive", path=self._name, offset=0)
        if head[:8] != FILE_MAGIC[: len(head)] or len(head) < 10:
            what = "truncated" if head == FILE_MAGIC[: len(head)] else "wrong magic bytes"
            raise ArchiveError(f"not a logpipe archive ({what})", path=self._name, offset=0)
        (version,) = struct.unpack_from("<H", head, 8)
        if version != VERSION:
            raise ArchiveError(
                f"unsupported archive format version {version} (this logpipe reads version "
                f"{VERSION}; use a logpipe release that writes version {version})",
                path=self._name,
                offset=8,
            )
        try:
            if len(head) < _FILE_HEAD.size:
                raise _DamageError("file header truncated", len(head))
            _magic, _version, flags, archive_id, meta_len, crc = _FILE_HEAD.unpack(head)
            if meta_len > min(MAX_JSON_BYTES, self._size - _FILE_HEAD.size):
                raise _DamageError(f"file header claims {meta_len} bytes of meta", 20)
            meta_json = self._read_at(_FILE_HEAD.size, meta_len)
            if zlib.crc32(meta_json, zlib.crc32(head[8:24])) != crc:
                raise _DamageError("file header checksum mismatch", 0)
            if flags != 0:
                raise _DamageError(f"unknown flags {flags:#06x} (written by a newer logpipe?)", 10)
            meta = _load_json(meta_json, _FILE_HEAD.size)
            if not isinstance(meta, dict):
                raise _DamageError("archive meta is not a JSON object", _FILE_HEAD.size)
        except _DamageError as damage:
            if not self._salvage:
                raise ArchiveError(damage.message, path=self._name, offset=damage.offset) from None
            self._fail(damage)
            return None, None
        self._meta = meta
        return archive_id, _FILE_HEAD.size + meta_len

    def _load_footer(self, archive_id: bytes | None) -> tuple[bytes, list[int], int]:
        tail_at = self._size - _TAIL.size
        if tail_at < _FILE_HEAD.size:
            raise _DamageError("archive ends without its index (truncated?)", self._size)
        footer_start, crc, end = _TAIL.unpack(self._read_at(tail_at, _TAIL.size))
        if end != END_MAGIC:
            raise _DamageError("archive ends without its index (truncated?)", self._size)
        body_len = tail_at - footer_start
        if not _FILE_HEAD.size <= footer_start <= tail_at - _FOOT_HEAD.size or (
            (body_len - _FOOT_HEAD.size) % _OFFSET.size
        ):
            raise _DamageError("index pointer is damaged", tail_at)
        body = self._read_at(footer_start, body_len)
        if zlib.crc32(_OFFSET.pack(footer_start), zlib.crc32(body)) != crc:
            raise _DamageError("index checksum mismatch", footer_start)
        magic, footer_id, count = _FOOT_HEAD.unpack_from(body)
        if magic != FOOTER_MAGIC or count * _OFFSET.size != body_len - _FOOT_HEAD.size:
            raise _DamageError("index is malformed", footer_start)
        if archive_id is not None and footer_id != archive_id:
            raise _DamageError("index belongs to another archive (id mismatch)", footer_start)
        offsets = [off for (off,) in _OFFSET.iter_unpack(body[_FOOT_HEAD.size :])]
        return footer_id, offsets, footer_start

    def _load_indexed(
        self, archive_id: bytes, offsets: list[int], footer_start: int, data_start: int | None
    ) -> None:
        """Read every segment header at the offsets the footer lists."""
        first = offsets[0] if offsets else footer_start
        if data_start is not None and first != data_start:
            self._fail(_DamageError("index does not start where the segments do", data_start, 0))
        ends = [*offsets[1:], footer_start]
        for index, (start, end) in enumerate(zip(offsets, ends[: len(offsets)], strict=True)):
            try:
                if not start < end:
                    raise _DamageError("index lists overlapping segments", start, index)
                info, table = self._parse_segment(start, end, archive_id, index)
                if info.offset + info.length != end:
                    raise _DamageError(
                        f"segment is {info.length} bytes but the index leaves {end - start}",
                        start,
                        index,
                    )
                self._infos[index] = (info, table)
            except _DamageError as damage:
                damage.segment = index
                self._fail(damage)
                self.lost.append(index)

    def _load_strict_scan(
        self, archive_id: bytes | None, data_start: int | None, footer_damage: _DamageError
    ) -> None:
        """Walk segments from the first without the footer; any doubt is an error.

        The walk may only end at a footer (damaged, but proof the writer finished here): a
        file that simply stops after a segment may have lost whole segments after it.
        """
        assert archive_id is not None and data_start is not None  # header is fatal here
        pos, index = data_start, 0
        while True:
            if pos >= self._size:
                raise ArchiveError(
                    f"no valid index after {index} segment(s) "
                    f"({footer_damage.message}); later segments may be missing, "
                    "open with salvage=True to read the intact ones",
                    path=self._name,
                    offset=pos,
                    segment=index,
                )
            marker = self._read_at(pos, 16)
            if marker == FOOTER_MAGIC + archive_id:
                return  # the footer is here but damaged; every segment before it is verified
            try:
                info, table = self._parse_segment(pos, self._size, archive_id, index)
            except _DamageError as damage:
                raise ArchiveError(
                    damage.message, path=self._name, offset=damage.offset, segment=index
                ) from None
            self._infos[index] = (info, table)
            pos, index = info.offset + info.length, index + 1

    def _load_salvage_scan(self, archive_id: bytes | None, data_start: int | None) -> None:
        """Walk segments without the footer, skipping damage and resyncing on sync markers.

        A damaged segment whose own index is unreadable is reported as the one expected next
        (one past the last index seen), which is right unless several segments were lost in a
        row; gaps between the indices found are reported as lost too.
        """
        pos = data_start if data_start is not None else len(FILE_MAGIC)
        next_index = 0
        reported: set[int] = set()
        while pos < self._size:
            marker = self._read_at(pos, 16)
            ours = archive_id is None or marker[8:] == archive_id
            if marker[:8] == FOOTER_MAGIC and ours:
                break
            if marker[:8] == SEG_MAGIC and ours:
                try:
                    info, table = self._parse_segment(pos, self._size, marker[8:16], None)
                except _DamageError as damage:
                    if damage.segment is None:
                        damage.segment = next_index
                    reported.add(damage.segment)
                    next_index = damage.segment + 1
                    self._fail(damage)
                    if damage.resume is not None:
                        pos = damage.resume
                        continue
                else:
                    archive_id = marker[8:16]  # adopted when the file header was damaged
                    if info.index in self._infos:
                        self._fail(_DamageError("duplicate segment index", pos, info.index))
                    else:
                        self._infos[info.index] = (info, table)
                    next_index = info.index + 1
                    pos = info.offset + info.length
                    continue
            else:
                self._fail(_DamageError("garbage where a segment should start", pos, next_index))
            found = self._find_marker(pos + 1, archive_id)
            if found is None:
                break
            pos = found
        known = max([*self._infos, *reported], default=-1)
        for index in range(known + 1):
            if index not in self._infos:
                self.lost.append(index)
                if index not in reported:
                    self.damaged.append(f"{self._name}: segment {index}: lost")

    def _find_marker(self, start: int, archive_id: bytes | None) -> int | None:
        """Offset of the next segment or footer marker at or after ``start``, reading chunks."""
        pos = start
        while pos < self._size:
            chunk = self._read_at(pos, _SCAN_CHUNK + 15)
            hits = [
                at
                for at in (chunk.find(SEG_MAGIC), chunk.find(FOOTER_MAGIC))
                if at >= 0 and at < _SCAN_CHUNK
            ]
            if not hits:
                pos += _SCAN_CHUNK
                continue
            at = min(hits)
            if archive_id is None or chunk[at + 8 : at + 16] == archive_id:
                return pos + at
            pos += at + 1
        return None

    def _parse_segment(
        self, start: int, limit: int, archive_id: bytes, index: int | None
    ) -> tuple[SegmentInfo, list[_Stream]]:
        """Read and verify the segment header at ``start``; the segment must end by ``limit``.

        Raises :class:`_DamageError`. In salvage mode the stream checksums are verified too, so
        that :attr:`segments` lists only segments that will read back.
        """
        fixed = self._read_at(start, _SEG_HEAD.size)
        if len(fixed) < _SEG_HEAD.size:
            raise _DamageError("segment header truncated", start, index)
        magic, seg_id, seg_index, head_len, payload_len, crc = _SEG_HEAD.unpack(fixed)
        if magic != SEG_MAGIC or seg_id != archive_id:
            raise _DamageError("no segment sync marker here", start, index)
        if head_len > min(MAX_JSON_BYTES, limit - start - _SEG_HEAD.size):
            raise _DamageError("segment header truncated or its length damaged", start, index)
        head_json = self._read_at(start + _SEG_HEAD.size, head_len)
        if zlib.crc32(head_json, zlib.crc32(fixed[16:32])) != crc:
            raise _DamageError("segment header checksum mismatch", start, index)
        # From here on the lengths are trustworthy: salvage may skip to the segment's end.
        payload_at = start + _SEG_HEAD.size + head_len
        end = payload_at + payload_len
        if index is not None and seg_index != index:
            raise _DamageError(f"segment says it is number {seg_index}", start, index, end)
        if end > limit:
            raise _DamageError(
                f"segment truncated: needs {end - start} bytes, only {limit - start} left",
                start,
                seg_index,
            )
        header, table = _parse_table(_load_json(head_json, start), payload_at, payload_len, start)
        info = SegmentInfo(
            index=seg_index,
            offset=start,
            length=end - start,
            header=header,
            stream_sizes={entry.name: (entry.length, entry.raw_length) for entry in table},
        )
        if self._salvage:
            for entry in table:
                try:
                    self._stored(entry)
                except _DamageError as damage:
                    raise _DamageError(damage.message, damage.offset, seg_index, end) from None
        return info, table

    def _stored(self, entry: _Stream) -> bytes:
        data = self._read_at(entry.offset, entry.length)
        if len(data) != entry.length:
            raise _DamageError(f"stream {entry.name!r} truncated", entry.offset)
        if zlib.crc32(data) != entry.crc32:
            raise _DamageError(f"checksum mismatch in stream {entry.name!r}", entry.offset)
        return data

    def _decode(self, entry: _Stream, stored: bytes) -> bytes:
        if entry.codec == "raw":
            return stored
        try:
            raw = self._decoder.decompress(stored, max_output_size=entry.raw_length)
        except zstandard.ZstdError as exc:
            raise _DamageError(
                f"stream {entry.name!r} does not decompress: {exc}", entry.offset
            ) from None
        if len(raw) != entry.raw_length:
            raise _DamageError(
                f"stream {entry.name!r} decompressed to {len(raw)} bytes, "
                f"expected {entry.raw_length}",
                entry.offset,
            )
        return raw


def _load_json(blob: bytes, offset: int) -> Any:
    """Parse checksum-verified JSON; anything unparsable is damage (never eval'd)."""
    try:
        return json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _DamageError(f"header is not valid JSON: {exc}", offset) from None


def _parse_table(
    obj: Any, payload_at: int, payload_len: int, start: int
) -> tuple[dict[str, Any], list[_Stream]]:
    """Validate a decoded segment header; its fields decide which bytes we read and trust.

    The checksum already rules out accidental damage, so a failure here means a writer bug or
    a crafted file: still an :class:`ArchiveError`, never a ``KeyError`` deep in a reader.
    """
    bad = _DamageError("segment header is malformed", start)
    if not isinstance(obj, dict) or not isinstance(obj.get("header"), dict):
        raise bad
    rows = obj.get("streams")
    if not isinstance(rows, list):
        raise bad
    table: list[_Stream] = []
    names: set[str] = set()
    offset = 0
    for row in rows:
        if not isinstance(row, dict):
            raise bad
        name, codec = row.get("name"), row.get("codec")
        numbers = [row.get(key) for key in ("offset", "length", "raw_length", "crc32")]
        ints = [n for n in numbers if type(n) is int and n >= 0]
        if len(ints) != 4 or not isinstance(name, str) or name in names:
            raise bad
        if not isinstance(codec, str) or codec not in ("zstd", "raw"):
            raise bad
        rel, length, raw_length, crc = ints
        if rel != offset or crc >= 1 << 32 or (codec == "raw" and raw_length != length):
            raise bad
        names.add(name)
        table.append(_Stream(name, codec, payload_at + rel, length, raw_length, crc))
        offset += length
    if offset != payload_len:
        raise bad
    return obj["header"], table
