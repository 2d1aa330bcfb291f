"""The per-tenant manifest: every segment with what a query needs to skip it.

One JSON document per tenant (``tenants/<tenant>/manifest.json``), replaced whole on every
change (temp file + fsync + rename, :mod:`logpipe.store.fsio`), so a reader sees either the
old or the new list, never a mix. It is the *only* source of truth: a segment file that the
manifest does not list does not exist for queries (and is removed when a writer opens the
tenant, see :mod:`logpipe.store.store`). Pure data and (de)serialisation here; no I/O.

**Sealed chunks** (version 2). Rewriting every entry on every flush costs time and bytes
in proportion to the whole store (measured: about 40 µs and 4.7 KB per entry, so a second
per flush at 20,000 segments). So older entries move, ``seal_entries`` at a time, into
immutable chunk files ``manifest/<hash>.json`` named by the SHA-256 of their content;
``manifest.json`` lists the chunk names and only the recent entries, so a flush rewrites a
bounded document. A chunk that loses an entry (compaction, retention) is dropped and its
other entries become recent again. A manifest with no chunk is written as version 1, which
older readers understand. Chunk files are written (durably) before the manifest that names
them, and a reader checks each chunk's hash against its name.

Why JSON and not Arrow IPC: the manifest is small (a few hundred bytes plus the content
filter per segment), read by humans when debugging, and validated field by field on read;
nothing is ever unpickled or evaluated.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from logpipe.labels import LABEL_NAME, stream_id
from logpipe.store.index import ContentIndex

__all__ = [
    "CHUNK_FORMAT",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "Manifest",
    "SealedChunk",
    "SegmentEntry",
    "decode_chunk",
    "encode_chunk",
]

MANIFEST_FORMAT = "logpipe-store-manifest"
MANIFEST_VERSION = 2  # 1: every entry inline; 2: older entries in sealed chunk files
CHUNK_FORMAT = "logpipe-store-manifest-chunk"
_CHUNK_NAME = re.compile(r"manifest/[0-9a-f]{32}\.json")

#: Loads a sealed chunk's entries by name (the store's I/O; ValueError when damaged).
ChunkLoader = Callable[[str], Sequence["SegmentEntry"]]


@dataclass(frozen=True)
class SegmentEntry:
    """One immutable segment file of one stream.

    ``path`` is relative to the tenant's directory; ``seq`` orders segments by ingest (it
    breaks ties between lines of one stream with equal timestamps, so reads are
    deterministic); ``min_ts``/``max_ts`` are inclusive; ``bytes`` is the file's size and
    ``raw_bytes`` the lines' (what Loki's stats call bytes: uncompressed line lengths).
    """

    path: str
    stream: str
    labels: Mapping[str, str]
    seq: int
    min_ts: int
    max_ts: int
    lines: int
    bytes: int
    raw_bytes: int
    index: ContentIndex

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        """Whether the segment may hold a line with ``start_ns <= ts < end_ns``."""
        return self.min_ts < end_ns and self.max_ts >= start_ns

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "stream": self.stream,
            "labels": dict(self.labels),
            "seq": self.seq,
            "min_ts": self.min_ts,
            "max_ts": self.max_ts,
            "lines": self.lines,
            "bytes": self.bytes,
            "raw_bytes": self.raw_bytes,
            "index": self.index.to_json(),
        }

    @classmethod
    def from_json(
        cls, obj: object, shared: dict[str, Mapping[str, str]] | None = None
    ) -> SegmentEntry:
        """Validated inverse of :meth:`to_json` (ValueError when malformed). ``shared``:
        stream id -> labels of the entries read so far, so one stream's entries share one
        label mapping in memory instead of a copy each."""
        if not isinstance(obj, dict):
            raise ValueError("segment entry is not an object")
        path, stream, labels = obj.get("path"), obj.get("stream"), obj.get("labels")
        if not isinstance(path, str) or not path.endswith(".lpz") or ".." in path.split("/"):
            raise ValueError(f"segment entry has a bad path {path!r}")
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and LABEL_NAME.fullmatch(k) and isinstance(v, str)
            for k, v in labels.items()
        ):
            raise ValueError(f"segment {path}: bad labels")
        if stream != stream_id(labels):
            raise ValueError(f"segment {path}: stream id does not match its labels")
        numbers = {}
        for key in ("seq", "min_ts", "max_ts", "lines", "bytes", "raw_bytes"):
            value = obj.get(key)
            if type(value) is not int or value < 0:
                raise ValueError(f"segment {path}: {key} is not a non-negative integer")
            numbers[key] = value
        if numbers["min_ts"] > numbers["max_ts"] or numbers["lines"] < 1:
            raise ValueError(f"segment {path}: min_ts > max_ts or no lines")
        try:
            index = ContentIndex.from_json(obj.get("index"))
        except ValueError as exc:
            raise ValueError(f"segment {path}: {exc}") from None
        known = None if shared is None else shared.get(stream)
        if known is None:
            known = {sys.intern(k): sys.intern(v) for k, v in labels.items()}
            if shared is not None:
                shared[stream] = known
        return cls(path=path, stream=stream, labels=known, index=index, **numbers)


@dataclass(frozen=True)
class SealedChunk:
    """Entries kept in an immutable chunk file instead of ``manifest.json``: its name
    (``manifest/<hash>.json``, relative to the tenant) and the paths of its entries."""

    name: str
    paths: tuple[str, ...]


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii")


def encode_chunk(tenant: str, entries: Sequence[SegmentEntry]) -> tuple[str, bytes]:
    """A chunk file's name and bytes for ``entries``."""
    data = _json({"format": CHUNK_FORMAT, "version": 1, "tenant": tenant,
                  "segments": [s.to_json() for s in entries]})  # fmt: skip
    return f"manifest/{hashlib.sha256(data).hexdigest()[:32]}.json", data


def decode_chunk(
    data: bytes, tenant: str, name: str, shared: dict[str, Mapping[str, str]] | None = None
) -> tuple[SegmentEntry, ...]:
    """A chunk file's entries, after checking its hash against ``name`` (ValueError)."""
    if f"manifest/{hashlib.sha256(data).hexdigest()[:32]}.json" != name:
        raise ValueError(f"manifest chunk {name} does not match its hash")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"manifest chunk {name} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CHUNK_FORMAT or doc.get("version") != 1:
        raise ValueError(f"{name} is not a manifest chunk this logpipe reads")
    if doc.get("tenant") != tenant or not isinstance(doc.get("segments"), list):
        raise ValueError(f"manifest chunk {name} belongs to another tenant or has no segments")
    return tuple(SegmentEntry.from_json(row, shared) for row in doc["segments"])


@dataclass(frozen=True)
class Manifest:
    """A tenant's segments, the next ``seq`` to hand out, and the ingested offsets.

    ``offsets`` maps ``(source, partition)`` to the last offset ingested from it: the
    idempotency record the Kafka daemon relies on (a range ending at or before it is a
    duplicate). It changes in the same atomic write as the segments it describes.
    ``sealed``: which entries live in chunk files (see the module docstring); the others
    are written inline.
    """

    tenant: str
    segments: tuple[SegmentEntry, ...] = ()
    next_seq: int = 0
    offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)
    sealed: tuple[SealedChunk, ...] = ()

    def updated(
        self,
        *,
        add: Iterable[SegmentEntry] = (),
        remove: Iterable[str] = (),
        offsets: Mapping[tuple[str, int], int] | None = None,
    ) -> Manifest:
        """A new manifest with segments added/removed (by path) and offsets replaced
        (chunks that lost an entry are resealed by :meth:`resealed`)."""
        gone = set(remove)
        added = tuple(add)
        kept = tuple(s for s in self.segments if s.path not in gone)
        next_seq = max([self.next_seq, *(s.seq + 1 for s in added)])
        return replace(
            self,
            segments=kept + added,
            next_seq=next_seq,
            offsets=dict(self.offsets if offsets is None else offsets),
        )

    def resealed(self, seal_entries: int) -> tuple[Manifest, list[tuple[str, bytes]]]:
        """This manifest with intact chunks kept, broken ones dissolved, and the oldest
        recent entries sealed ``seal_entries`` at a time while at least twice that many
        are recent (0: no chunks, every entry inline); plus the new chunk files to write
        before it."""
        present = {s.path: s for s in self.segments}
        kept = [c for c in self.sealed if seal_entries > 0 and all(p in present for p in c.paths)]
        in_chunks = {p for c in kept for p in c.paths}
        recent = [s for s in self.segments if s.path not in in_chunks]
        files: list[tuple[str, bytes]] = []
        while seal_entries > 0 and len(recent) >= 2 * seal_entries:
            part, recent = recent[:seal_entries], recent[seal_entries:]
            name, data = encode_chunk(self.tenant, part)
            files.append((name, data))
            kept.append(SealedChunk(name, tuple(s.path for s in part)))
        ordered = tuple(present[p] for c in kept for p in c.paths) + tuple(recent)
        return replace(self, segments=ordered, sealed=tuple(kept)), files

    def to_bytes(self) -> bytes:
        """``manifest.json``: the chunk names and the entries not in them (version 1
        when there are no chunks)."""
        in_chunks = {p for c in self.sealed for p in c.paths}
        doc: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "version": 2 if self.sealed else 1,
            "tenant": self.tenant,
            "next_seq": self.next_seq,
            "offsets": [
                {"source": source, "partition": partition, "last": last}
                for (source, partition), last in sorted(self.offsets.items())
            ],
        }
        if self.sealed:
            doc["chunks"] = [c.name for c in self.sealed]
        doc["segments"] = [s.to_json() for s in self.segments if s.path not in in_chunks]
        return _json(doc)

    @classmethod
    def from_bytes(
        cls, data: bytes, tenant: str, load_chunk: ChunkLoader | None = None
    ) -> Manifest:
        """Parse and validate a manifest (ValueError saying what is wrong); a version 2
        manifest's chunks come from ``load_chunk``."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"manifest is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a logpipe store manifest")
        version = doc.get("version")
        if version not in (1, MANIFEST_VERSION):
            raise ValueError(
                f"manifest version {version!r} is not supported "
                f"(this logpipe reads versions 1 to {MANIFEST_VERSION})"
            )
        if doc.get("tenant") != tenant:
            raise ValueError(f"manifest belongs to tenant {doc.get('tenant')!r}")
        next_seq, rows, offset_rows = doc.get("next_seq"), doc.get("segments"), doc.get("offsets")
        if type(next_seq) is not int or not isinstance(rows, list):
            raise ValueError("manifest lacks next_seq or segments")
        if not isinstance(offset_rows, list):
            raise ValueError("manifest lacks offsets")
        names = doc.get("chunks", []) if version == 2 else []
        if not isinstance(names, list) or not all(
            isinstance(n, str) and _CHUNK_NAME.fullmatch(n) for n in names
        ):
            raise ValueError("manifest chunks are malformed")
        if names and load_chunk is None:
            raise ValueError("manifest has chunks and no way to load them")
        sealed: list[SealedChunk] = []
        chunked: list[SegmentEntry] = []
        for name in names:
            entries = tuple(load_chunk(name)) if load_chunk is not None else ()
            sealed.append(SealedChunk(name, tuple(s.path for s in entries)))
            chunked.extend(entries)
        shared: dict[str, Mapping[str, str]] = {}
        segments = tuple(chunked) + tuple(SegmentEntry.from_json(row, shared) for row in rows)
        if len({s.path for s in segments}) != len(segments):
            raise ValueError("manifest lists a segment twice")
        if any(s.seq >= next_seq for s in segments):
            raise ValueError("manifest has a segment seq at or beyond next_seq")
        offsets: dict[tuple[str, int], int] = {}
        for row in offset_rows:
            if not isinstance(row, dict):
                raise ValueError("manifest offsets are malformed")
            source, partition, last = row.get("source"), row.get("partition"), row.get("last")
            if not isinstance(source, str) or type(partition) is not int or type(last) is not int:
                raise ValueError("manifest offsets are malformed")
            offsets[(source, partition)] = last
        return cls(tenant=tenant, segments=segments, next_seq=next_seq, offsets=offsets,
                   sealed=tuple(sealed))  # fmt: skip
