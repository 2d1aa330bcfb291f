"""The per-tenant manifest: every segment with what a query needs to skip it.

One JSON document per tenant (``tenants/<tenant>/manifest.json``), replaced whole on every
change (temp file + fsync + rename, :mod:`logpipe.store.fsio`), so a reader sees either the
old or the new list, never a mix. It is the *only* source of truth: a segment file that the
manifest does not list does not exist for queries (and is removed when a writer opens the
tenant, see :mod:`logpipe.store.store`). Pure data and (de)serialisation here; no I/O.

Why JSON and not Arrow IPC: the manifest is small (a few hundred bytes plus the content
filter per segment), read by humans when debugging, and validated field by field on read;
nothing is ever unpickled or evaluated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from logpipe.labels import LABEL_NAME, stream_id
from logpipe.store.index import ContentIndex

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "Manifest", "SegmentEntry"]

MANIFEST_FORMAT = "logpipe-store-manifest"
MANIFEST_VERSION = 1


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
class Manifest:
    """A tenant's segments, the next ``seq`` to hand out, and the ingested offsets.

    ``offsets`` maps ``(source, partition)`` to the last offset ingested from it: the
    idempotency record the Kafka daemon relies on (a range ending at or before it is a
    duplicate). It changes in the same atomic write as the segments it describes.
    """

    tenant: str
    segments: tuple[SegmentEntry, ...] = ()
    next_seq: int = 0
    offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)

    def updated(
        self,
        *,
        add: Iterable[SegmentEntry] = (),
        remove: Iterable[str] = (),
        offsets: Mapping[tuple[str, int], int] | None = None,
    ) -> Manifest:
        """A new manifest with segments added/removed (by path) and offsets replaced."""
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

    def to_bytes(self) -> bytes:
        doc = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "tenant": self.tenant,
            "next_seq": self.next_seq,
            "offsets": [
                {"source": source, "partition": partition, "last": last}
                for (source, partition), last in sorted(self.offsets.items())
            ],
            "segments": [s.to_json() for s in self.segments],
        }
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, tenant: str) -> Manifest:
        """Parse and validate a manifest (ValueError saying what is wrong)."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"manifest is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a logpipe store manifest")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"manifest version {doc.get('version')!r} is not supported "
                f"(this logpipe reads version {MANIFEST_VERSION})"
            )
        if doc.get("tenant") != tenant:
            raise ValueError(f"manifest belongs to tenant {doc.get('tenant')!r}")
        next_seq, rows, offset_rows = doc.get("next_seq"), doc.get("segments"), doc.get("offsets")
        if type(next_seq) is not int or not isinstance(rows, list):
            raise ValueError("manifest lacks next_seq or segments")
        if not isinstance(offset_rows, list):
            raise ValueError("manifest lacks offsets")
        shared: dict[str, Mapping[str, str]] = {}
        segments = tuple(SegmentEntry.from_json(row, shared) for row in rows)
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
        return cls(tenant=tenant, segments=segments, next_seq=next_seq, offsets=offsets)
