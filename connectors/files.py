"""File source: tail files with rotation and truncation handling, checkpointed positions,
and multi-line aggregation (Java stack traces and the like).

**Identity.** A file is its ``(device, inode)``, not its path: ``app.log`` renamed to
``app.log.1`` and replaced by a new ``app.log`` is a rotation; the old file is read to its
end before the new one is opened from its start, so nothing written just before the
rotation is lost. A file that shrinks below the position read so far was truncated
(``copytruncate``); it is read again from its start.

**Checkpoints.** After the runner acks a chunk (every sink wrote it), the file's position
after it is recorded; :meth:`FileSource.commit` writes the positions to a small JSON file
atomically (temp file, fsync, rename), so a restart resumes where durable data ends.
Delivery is at-least-once: a crash between a store write and the checkpoint re-reads those
lines (file offsets are not stable across rotation, so the store cannot dedupe them the
way it dedupes Kafka offsets).

**Multi-line.** A :class:`MultilineRule` says which lines continue the entry before them
(by default Java's: leading whitespace, ``at ``, ``Caused by:``, ``... N more``); they are
joined with ``\\n`` into one entry whose offset is its first line's. The last entry of a
file is held until a line that starts a new one arrives or ``flush_after_s`` passes (the
writer may be mid-trace); the checkpoint never moves past a held entry. Entries are
bounded by ``max_lines`` and ``max_bytes`` (cut with a counted ``truncated``).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.labels import format_labels
from logpipe.pipeline.api import AckToken, Chunk, DrainFn, Drops, ResumeFn
from logpipe.records import raw_batch
from logpipe.timestamps import detect_timestamps, fill_forward

__all__ = [
    "JAVA_CONTINUATION",
    "Checkpoint",
    "FileSource",
    "FileSourceConfig",
    "MultilineAggregator",
    "MultilineRule",
]

log = logging.getLogger(__name__)

JAVA_CONTINUATION = r"^(?:[ \t]+|at |Caused by:|\.\.\. \d+ (?:more|common frames omitted))"
CHECKPOINT_FORMAT = "logpipe-file-checkpoint"


@dataclass(frozen=True)
class MultilineRule:
    """Lines matching ``continuation`` (a regex on the raw bytes, matched at the start)
    join the entry before them; with ``start`` set, only lines matching it start a new
    entry and every other line continues (for formats whose header is reliable)."""

    continuation: str | None = JAVA_CONTINUATION
    start: str | None = None
    max_lines: int = 500
    max_bytes: int = 1 << 20
    flush_after_s: float = 1.0

    def compiled(self) -> tuple[re.Pattern[bytes] | None, re.Pattern[bytes] | None]:
        cont = re.compile(self.continuation.encode()) if self.continuation else None
        start = re.compile(self.start.encode()) if self.start else None
        return cont, start


@dataclass
class _Entry:
    offset: int
    end: int
    parts: list[bytes]
    size: int
    truncated: bool = False


class MultilineAggregator:
    """Joins continuation lines onto their entry; pure (no I/O), one per file.

    :meth:`feed` takes complete lines with their start and end byte offsets and returns
    the entries that are complete; the last one is held (``held_offset``) until a new
    entry starts, :meth:`flush` or :meth:`expire`.
    """

    def __init__(self, rule: MultilineRule | None) -> None:
        self.rule = rule
        self._cont, self._start = rule.compiled() if rule else (None, None)
        self._held: _Entry | None = None
        self._held_since = 0.0
        self.truncated = 0

    @property
    def held_offset(self) -> int | None:
        """Where the held entry starts: the checkpoint must not pass it."""
        return None if self._held is None else self._held.offset

    def _continues(self, line: bytes) -> bool:
        if self._start is not None:
            return self._start.match(line) is None
        return self._cont is not None and self._cont.match(line) is not None

    def feed(
        self, lines: Sequence[bytes], starts: Sequence[int], ends: Sequence[int]
    ) -> list[tuple[int, int, bytes]]:
        """Complete entries as ``(start offset, end offset, text)``."""
        out: list[tuple[int, int, bytes]] = []
        if self.rule is None:
            return [(s, e, line) for line, s, e in zip(lines, starts, ends, strict=True)]
        rule = self.rule
        for line, s, e in zip(lines, starts, ends, strict=True):
            held = self._held
            if held is not None and self._continues(line):
                if len(held.parts) >= rule.max_lines or held.size + len(line) + 1 > rule.max_bytes:
                    if not held.truncated:
                        held.truncated = True
                        self.truncated += 1
                else:
                    held.parts.append(line)
                    held.size += len(line) + 1
                held.end = e
                continue
            if held is not None:
                out.append(self._emit(held))
            self._held = _Entry(offset=s, end=e, parts=[line], size=len(line))
            self._held_since = time.monotonic()
        return out

    def _emit(self, entry: _Entry) -> tuple[int, int, bytes]:
        self._held = None
        return entry.offset, entry.end, b"\n".join(entry.parts)

    def flush(self) -> list[tuple[int, int, bytes]]:
        """The held entry, whatever follows (end of a rotated file, shutdown)."""
        return [] if self._held is None else [self._emit(self._held)]

    def expire(self, now: float | None = None) -> list[tuple[int, int, bytes]]:
        """The held entry once it waited ``flush_after_s`` without a continuation."""
        if self._held is None or self.rule is None:
            return []
        t = time.monotonic() if now is None else now
        return self.flush() if t - self._held_since >= self.rule.flush_after_s else []


class Checkpoint:
    """Positions per file identity, in a JSON file replaced atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, int]:
        """``{"dev:ino": offset}``; empty when absent. A damaged file is reported and
        ignored (reading from the start duplicates lines; refusing to start loses them)."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("checkpoint %s unreadable (%s); starting from scratch", self.path, exc)
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        if data.get("format") != CHECKPOINT_FORMAT or not isinstance(files, dict):
            log.warning("checkpoint %s is not a logpipe file checkpoint; ignored", self.path)
            return {}
        return {
            k: v["offset"]
            for k, v in files.items()
            if isinstance(v, dict) and type(v.get("offset")) is int and v["offset"] >= 0
        }

    def save(self, positions: dict[str, tuple[str, int]]) -> None:
        """Write ``{"dev:ino": (path, offset)}`` (temp + fsync + rename + dir fsync)."""
        doc = {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "files": {k: {"path": p, "offset": o} for k, (p, o) in sorted(positions.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps(doc, indent=1).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not keep a half-written temp file
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass(frozen=True)
class FileSourceConfig:
    """What to tail. ``paths`` are globs, re-expanded every ``rescan_s``; ``filename_label``
    names the label holding the path (None: none). ``start_at``: where a file with no
    checkpoint starts (``beginning``, or ``end`` to skip history: files present at the
    first scan start at their end, files appearing later at their start). To resume a
    file rotated while the source was down, let ``paths`` match the rotated names too
    (``app.log*``): the checkpoint knows the file by identity, whatever its name now."""

    paths: Sequence[str]
    checkpoint: str
    name: str = "files"
    labels: dict[str, str] = field(default_factory=dict)
    filename_label: str | None = "filename"
    multiline: MultilineRule | None = None
    read_bytes: int = 1 << 20
    max_line_bytes: int = 1 << 20
    start_at: str = "beginning"
    rescan_s: float = 1.0
    commit_interval_s: float = 1.0
    detect_timestamps: bool = True


@dataclass
class _Tail:
    """One open file."""

    ident: str
    path: str
    fd: int
    pos: int  # next byte to read
    gen: int  # bumps on truncation, so chunk keys restart their offsets
    agg: MultilineAggregator
    buf: bytes = b""
    rotated: bool = False  # the path now names another file: read this one to its end
    emitted: int = 0  # position after the last emitted entry (ack upper bound)
    last_ts: int | None = None


@dataclass(frozen=True)
class _Token:
    ident: str
    path: str
    offset: int


def _ident(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


class FileSource:
    """A :class:`~logpipe.pipeline.api.Source` tailing files (see the module docstring)."""

    def __init__(self, config: FileSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self._checkpoint = Checkpoint(config.checkpoint)
        self._saved: dict[str, int] = {}
        self._tails: dict[str, _Tail] = {}  # by identity
        self._acked: dict[str, tuple[str, int]] = {}
        self._dirty = False
        self._last_commit = 0.0
        self._next_scan = 0.0
        self._gen = 0
        self._scanned = False
        self.events: dict[str, int] = {}

    # -- Source protocol ----------------------------------------------------------------

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        del drain, resume  # files have no rebalances, and their offsets are not in the store
        self._saved = self._checkpoint.load()
        self._acked = {}

    def poll(self, timeout_s: float) -> list[Chunk]:
        now = time.monotonic()
        if now >= self._next_scan:
            self._scan()
            self._next_scan = now + self.config.rescan_s
        chunks = []
        for tail in list(self._tails.values()):
            chunk = self._read(tail)
            if chunk is not None:
                chunks.append(chunk)
        if not chunks:
            time.sleep(min(timeout_s, 0.05))
        return chunks

    def ack(self, tokens: Sequence[AckToken]) -> None:
        for token in tokens:
            if isinstance(token, _Token):
                self._acked[token.ident] = (token.path, token.offset)
                self._dirty = True

    def commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._dirty or (
            not force and now - self._last_commit < self.config.commit_interval_s
        ):
            return
        live = {t.ident for t in self._tails.values()}
        positions = {k: v for k, v in self._acked.items() if k in live}
        self._checkpoint.save(positions)
        self._dirty = False
        self._last_commit = now

    def close(self) -> None:
        try:
            self.commit(force=True)
        finally:
            for tail in self._tails.values():
                os.close(tail.fd)
            self._tails.clear()

    def lag(self) -> dict[tuple[str, int], int]:
        """Unread bytes per file."""
        out = {}
        for tail in self._tails.values():
            try:
                out[(tail.path, 0)] = max(0, os.fstat(tail.fd).st_size - tail.pos)
            except OSError:
                continue
        return out

    # -- tailing ------------------------------------------------------------------------

    def _event(self, kind: str) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1

    def _scan(self) -> None:
        """Open new files; mark files whose path now names another file as rotated."""
        current: dict[str, str] = {}
        for pattern in self.config.paths:
            for path in sorted(glob.glob(pattern)):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not os.path.isfile(path):
                    continue
                ident = _ident(st)
                current[path] = ident
                if ident not in self._tails:
                    self._open(path, ident, st)
        if not self._scanned:
            self._scanned = True
            if self._saved:  # checkpointed files that are gone: nothing left to resume
                log.info("checkpointed files no longer found: %d", len(self._saved))
                self._saved.clear()
        for tail in self._tails.values():
            if not tail.rotated and current.get(tail.path) != tail.ident:
                tail.rotated = True
                self._event("rotated")
                log.info("file %s was rotated; reading the old file to its end", tail.path)

    def _open(self, path: str, ident: str, st: os.stat_result) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            log.warning("cannot open %s: %s", path, exc)
            return
        start = self._saved.pop(ident, None)
        if start is None:
            start = st.st_size if self.config.start_at == "end" and not self._scanned else 0
        elif start > st.st_size:
            self._event("truncated")
            start = 0
        self._acked[ident] = (path, start)  # until an ack moves it: keep it checkpointed
        self._dirty = True
        self._gen += 1
        agg = MultilineAggregator(self.config.multiline)
        self._tails[ident] = _Tail(ident, path, fd, start, self._gen, agg, emitted=start)

    def _read(self, tail: _Tail) -> Chunk | None:
        size = os.fstat(tail.fd).st_size
        if size < tail.pos:  # truncated in place (copytruncate)
            self._event("truncated")
            log.info("file %s was truncated; reading it from the start", tail.path)
            self._gen += 1
            tail.gen, tail.pos, tail.buf, tail.emitted = self._gen, 0, b"", 0
            tail.agg = MultilineAggregator(self.config.multiline)
        data = os.pread(tail.fd, self.config.read_bytes, tail.pos) if size > tail.pos else b""
        base = tail.pos - len(tail.buf)
        tail.pos += len(data)
        buf = tail.buf + data
        cut = buf.rfind(b"\n") + 1
        complete, tail.buf = buf[:cut], buf[cut:]
        if len(tail.buf) > self.config.max_line_bytes:  # a line longer than the limit
            complete += tail.buf + b"\n"
            tail.buf = b""
            self._event("line_split")
        lines = complete.split(b"\n")[:-1] if complete else []
        sizes = np.fromiter((len(x) + 1 for x in lines), np.int64, len(lines))
        ends = (base + np.cumsum(sizes)).tolist()
        starts = [e - s for e, s in zip(ends, sizes.tolist(), strict=True)]
        lines = [x[:-1] if x.endswith(b"\r") else x for x in lines]
        entries = tail.agg.feed(lines, starts, ends)
        finished = tail.rotated and tail.pos >= size
        if finished:
            if tail.buf:  # an unterminated last line of a rotated file is still a line
                entries += tail.agg.feed([tail.buf], [base + cut], [base + len(buf)])
                tail.buf = b""
            entries += tail.agg.flush()
        else:
            entries += tail.agg.expire()
        chunk = self._chunk(tail, entries) if entries else None
        if finished:
            os.close(tail.fd)
            del self._tails[tail.ident]
            self._acked.pop(tail.ident, None)
        return chunk

    def _chunk(self, tail: _Tail, entries: list[tuple[int, int, bytes]]) -> Chunk:
        n = len(entries)
        limit = self.config.max_line_bytes
        texts = [e[2] if len(e[2]) <= limit else e[2][:limit] for e in entries]
        truncated = sum(len(e[2]) > limit for e in entries) + tail.agg.truncated
        tail.agg.truncated = 0
        offsets = np.fromiter((e[0] for e in entries), np.int64, n)
        end = entries[-1][1]
        tail.emitted = end
        labels = dict(self.config.labels)
        if self.config.filename_label:
            labels[self.config.filename_label] = tail.path
        line_arr = pa.array(texts, pa.binary())
        ts = pa.nulls(n, pa.int64())
        if self.config.detect_timestamps:
            ts = detect_timestamps(line_arr)
        default = tail.last_ts if tail.last_ts is not None else time.time_ns()
        ts = fill_forward(ts, default)
        tail.last_ts = ts[-1].as_py()
        batch = raw_batch(line_arr, source=tail.path, offsets=offsets,
                          labels=format_labels(labels), ts=ts,
                          line_numbers=np.zeros(n, dtype=np.int64))  # fmt: skip
        held = tail.agg.held_offset
        return Chunk(
            source=self.name,
            key=(f"{tail.path}@{tail.ident}#{tail.gen}", 0),
            batch=batch,
            first=int(offsets[0]),
            last=int(offsets[-1]),
            token=_Token(tail.ident, tail.path, end if held is None else min(end, held)),
            idempotent=False,
            drops=Drops(),
            received_ns=time.monotonic_ns(),
            bytes_in=int(pc.sum(pc.binary_length(line_arr)).as_py() or 0),
            truncated=truncated,
        )
