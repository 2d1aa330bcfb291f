"""The log store: tenants' streams of timestamped lines in immutable archive segments.

Loki's model: a *stream* is a label set; its lines are stored with their timestamps; a
query picks streams with label matchers and a time range. On disk (paths relative to the
store root, on any ``pyarrow.fs`` file system)::

    tenants/<tenant>/manifest.json                       the tenant's index (JSON)
    tenants/<tenant>/manifest/<hash>.json                its older entries, sealed
    tenants/<tenant>/streams/<stream id>/<min ts>-<seq>-<rand>.lpz   one segment each

Write protocol (one :meth:`Store.ingest` or :meth:`Store.ingest_batches` call is atomic:
one segment per stream, however many offset ranges it records): every new segment file is written
completely (temp + fsync + rename, or upload + move), *then* the manifest, which lists them
and the ingested offset range, is replaced in one atomic write. A crash before that leaves
segment files the manifest does not list: *orphans*. They are **removed**, not adopted,
when a writer first touches the tenant (or by :meth:`Store.recover`): their offset range
was never recorded, so the source (Kafka) delivers those lines again and adopting the
files would store them twice. Queries read only what the manifest lists, so they never see
orphans either way. One writer per tenant at a time (the daemon owning its partitions);
any number of readers, which reload the manifest when its size or mtime changes.

Retention and compaction (:meth:`Store.compact`: small adjacent segments of a stream
merged into one) change the manifest first and delete the files it no longer lists after
(``delete_delay_s`` later, for queries already reading them), so a crash in between leaves
orphans, which the next writer removes.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from logpipe.archive.container import ArchiveError
from logpipe.archive.segment import SegmentError
from logpipe.arrowutil import from_numpy
from logpipe.errors import StoreError
from logpipe.labels import LABEL_NAME, LabelError, LabelMatcher, format_labels, parse_labels
from logpipe.labels import stream_id as make_stream_id
from logpipe.store.compaction import CompactionJob, plan_compaction
from logpipe.store.fsio import StoreFiles
from logpipe.store.grams import GRAM
from logpipe.store.index import build_index
from logpipe.store.manifest import Manifest, SegmentEntry, decode_chunk
from logpipe.store.query import Direction, candidates, matching_streams, merge_rows
from logpipe.store.retention import select_expired
from logpipe.store.segfile import (
    encode_lines,
    may_hold_needles,
    read_segment_file,
    write_segment_file,
)
from logpipe.store.tenants import validate_tenant

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "CompactionReport",
    "IngestReport",
    "OffsetRange",
    "RetentionReport",
    "Store",
    "StoreStats",
]

#: Lines per segment are cut at about this many bytes of raw text (Loki's default target
#: chunk size is 1.5 MB compressed; logs compress 10-20x, so raw segments are larger).
DEFAULT_SEGMENT_BYTES = 4 << 20
#: Timestamps the codec can store: 1970 .. 2116 in nanoseconds.
MAX_TS_NS = (1 << 62) - 1
_FAR_PAST = 0
_FAR_FUTURE = 1 << 63


class OffsetRange(NamedTuple):
    """Where an ingested batch came from: ``first..last`` (inclusive) of one partition."""

    source: str
    partition: int
    first_offset: int
    last_offset: int


@dataclass
class IngestReport:
    """What one ingest call did; ``rejected`` counts dropped lines by reason."""

    tenant: str
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    streams: int = 0
    segments: list[str] = field(default_factory=list)
    bytes_written: int = 0
    duplicate: bool = False

    def reject(self, reason: str, count: int = 1) -> None:
        if count:
            self.rejected[reason] = self.rejected.get(reason, 0) + count


@dataclass
class RetentionReport:
    """Segments removed by :meth:`Store.apply_retention`: ``(tenant, path, reason)``."""

    removed: list[tuple[str, str, str]] = field(default_factory=list)
    bytes_freed: int = 0
    lines_removed: int = 0


@dataclass
class CompactionReport:
    """What :meth:`Store.compact` did: ``merges`` new segments from ``segments_in`` old
    ones; ``skipped`` jobs (an input gone or damaged: ``problems`` says which)."""

    merges: int = 0
    segments_in: int = 0
    lines: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoreStats:
    """Loki's ``/index/stats`` figures, from the manifest (segment granularity, as Loki's
    are chunk granularity): streams and segments ("chunks") overlapping the range, and their
    lines ("entries") and raw line bytes."""

    streams: int
    chunks: int
    entries: int
    bytes: int


class _Group(NamedTuple):
    labels: dict[str, str]
    ts: np.ndarray
    lines: list[bytes]
    hints: pa.Table | None = None  # a parse stage's template (and premask) per line


class _ChunkGoneError(Exception):
    """A sealed chunk named by the manifest just read is not there (replaced meanwhile)."""


class _Part(NamedTuple):
    """One batch of an ingest call: its lines by stream, its offset range, its report."""

    groups: list[_Group]
    position: tuple[str, int, int, int] | None
    report: IngestReport


def _merge_groups(groups: Sequence[_Group]) -> list[_Group]:
    """One group per stream: the lines of a stream's groups concatenated in order (so the
    stable sort by time keeps equal timestamps in that order). Parse hints survive only
    when every group has them in the same layout (otherwise the segment is mined anew)."""
    by_stream: dict[str, list[_Group]] = {}
    for g in groups:
        by_stream.setdefault(make_stream_id(g.labels), []).append(g)
    out = []
    for same in by_stream.values():
        if len(same) == 1:
            out.append(same[0])
            continue
        hints = None
        tables = [g.hints for g in same]
        first = tables[0]
        if first is not None and all(t is not None and t.schema == first.schema for t in tables):
            hints = pa.concat_tables([t for t in tables if t is not None])
        out.append(
            _Group(
                same[0].labels,
                np.concatenate([g.ts for g in same]),
                [line for g in same for line in g.lines],
                hints,
            )
        )
    return out


def _check_labels(labels: object) -> dict[str, str]:
    """A copy of a valid label set, else StoreError (Loki rejects an empty one too)."""
    if not isinstance(labels, Mapping) or not labels:
        raise StoreError("a stream needs at least one label")
    out: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise StoreError(f"invalid label name {name!r}")
        if not isinstance(value, str):
            raise StoreError(f"label {name} has a non-string value {value!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreError(f"label {name} is not valid Unicode") from None
        out[name] = value
    return out


def _string_column(batch: pa.Table | pa.RecordBatch, name: str) -> pa.Array | None:
    """Column ``name`` as one array of strings (dictionary-encoded ones stay so), if the
    batch has it with string values."""
    if name not in batch.schema.names:
        return None
    column = batch.column(name)
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _hints(batch: pa.Table | pa.RecordBatch) -> pa.Table | None:
    """What a parse stage found per line (``template``, ``premasked``), for the encoder."""
    template = _string_column(batch, "template")
    if template is None:
        return None
    columns = {"template": template.cast(pa.string())}
    premasked = _string_column(batch, "premasked")
    if premasked is not None:
        columns["premasked"] = premasked
    return pa.table(columns)


def _bounds(start_ns: int | None, end_ns: int | None) -> tuple[int, int]:
    return (_FAR_PAST if start_ns is None else start_ns), (
        _FAR_FUTURE if end_ns is None else end_ns
    )


class Store:
    """A log store under ``root`` of ``filesystem`` (the local file system when None).

    ``segment_bytes`` caps a segment's raw line bytes, ``segment_span_ns`` (optional) its
    time span; ``level`` is the zstd level of new segments (3: ingest speed matters more
    than the last few percent of size; ``logpipe compress`` uses 15). Files that retention
    or compaction took out of the manifest are deleted ``delete_delay_s`` later (0: at
    once), so a query that started before can still read them. The manifest keeps about
    ``manifest_seal_entries`` to twice that many entries inline and the older ones in
    sealed chunk files (:mod:`logpipe.store.manifest`; 0: all inline), so a flush rewrites
    a bounded document.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        filesystem: pafs.FileSystem | None = None,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_span_ns: int | None = None,
        level: int = 3,
        delete_delay_s: float = 0.0,
        manifest_seal_entries: int = 32,
    ) -> None:
        if segment_bytes < 1:
            raise StoreError("segment_bytes must be positive")
        if segment_span_ns is not None and segment_span_ns < 1:
            raise StoreError("segment_span_ns must be positive")
        self.files = StoreFiles(root, filesystem)
        self.segment_bytes = segment_bytes
        self.segment_span_ns = segment_span_ns
        self.level = level
        self.delete_delay_s = delete_delay_s
        if manifest_seal_entries < 0:
            raise StoreError("manifest_seal_entries must not be negative")
        self.manifest_seal_entries = manifest_seal_entries
        self._sealed: dict[str, dict[str, tuple[SegmentEntry, ...]]] = {}  # sealed, by name
        self._doomed: list[tuple[float, str]] = []  # (monotonic due time, file) to delete
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Manifest]] = {}
        self._recovered: set[str] = set()

    # -- paths and manifests ------------------------------------------------------------

    @staticmethod
    def _tenant_dir(tenant: str) -> str:
        return f"tenants/{tenant}"

    def _manifest_path(self, tenant: str) -> str:
        return f"{self._tenant_dir(tenant)}/manifest.json"

    def tenants(self) -> list[str]:
        """Tenants that have a directory in the store."""
        return self.files.list_dirs("tenants")

    def manifest(self, tenant: str) -> Manifest:
        """The tenant's current manifest (empty for a tenant that never ingested)."""
        tenant = validate_tenant(tenant)
        path = self._manifest_path(tenant)
        for _ in range(3):  # a chunk named by the manifest read may be gone by now
            stat = self.files.stat(path)
            if stat is None:
                return Manifest(tenant=tenant)
            cached = self._cache.get(tenant)
            if cached is not None and cached[0] == stat:
                return cached[1]
            data = self.files.read_bytes(path)
            if data is None:
                return Manifest(tenant=tenant)
            loaded: dict[str, tuple[SegmentEntry, ...]] = {}
            try:
                manifest = Manifest.from_bytes(data, tenant, self._chunk_loader(tenant, loaded))
            except _ChunkGoneError:
                continue  # replaced meanwhile: the newer manifest names newer chunks
            except ValueError as exc:
                raise StoreError(f"manifest is damaged: {exc}", tenant=tenant, path=path) from None
            self._sealed[tenant] = loaded
            if len(data) == stat[0]:
                self._cache[tenant] = (stat, manifest)
            return manifest
        raise StoreError("manifest names a chunk file that is missing", tenant=tenant, path=path)

    def _chunk_loader(
        self, tenant: str, loaded: dict[str, tuple[SegmentEntry, ...]]
    ) -> Callable[[str], tuple[SegmentEntry, ...]]:
        """Sealed chunks by name: from memory when known (they never change), else read
        and checked; each one returned is noted in ``loaded``."""
        known = self._sealed.get(tenant, {})
        shared: dict[str, Mapping[str, str]] = {}

        def load(name: str) -> tuple[SegmentEntry, ...]:
            entries = known.get(name)
            if entries is None:
                data = self.files.read_bytes(f"{self._tenant_dir(tenant)}/{name}")
                if data is None:
                    raise _ChunkGoneError(name)
                entries = decode_chunk(data, tenant, name, shared)
            loaded[name] = entries
            return entries

        return load

    def _save(self, manifest: Manifest) -> None:
        """Replace the tenant's manifest: new sealed chunks first, then ``manifest.json``;
        chunks it no longer names are retired like segment files."""
        tenant = manifest.tenant
        before = {c.name for c in manifest.sealed}
        manifest, files = manifest.resealed(self.manifest_seal_entries)
        for name, data in files:
            self.files.write_atomic(f"{self._tenant_dir(tenant)}/{name}", data)
        path = self._manifest_path(tenant)
        self.files.write_atomic(path, manifest.to_bytes())
        known = self._sealed.get(tenant, {})
        by_path = {s.path: s for s in manifest.segments} if files else {}
        self._sealed[tenant] = {
            c.name: known[c.name] if c.name in known else tuple(by_path[p] for p in c.paths)
            for c in manifest.sealed
        }
        self._retire(tenant, sorted(before - set(self._sealed[tenant])))
        stat = self.files.stat(path)
        if stat is not None:
            self._cache[tenant] = (stat, manifest)

    def recover(self, tenant: str) -> list[str]:
        """Remove files of ``tenant`` that its manifest does not list (orphans of a crash
        between segment write and manifest update, chunks no manifest names any more,
        stale temp files). Their paths.

        Only a writer may call this: a concurrent writer's new segments are orphans until
        its manifest update lands.
        """
        tenant = validate_tenant(tenant)
        manifest = self.manifest(tenant)
        listed = {s.path for s in manifest.segments} | {c.name for c in manifest.sealed}
        base = self._tenant_dir(tenant) + "/"
        removed = []
        for rel, _size in list(self.files.list_files(self._tenant_dir(tenant))):
            inside = rel[len(base) :]
            if inside == "manifest.json" or inside in listed:
                continue
            self.files.delete(rel)
            removed.append(inside)
        self._recovered.add(tenant)
        return sorted(removed)

    def _writer_manifest(self, tenant: str) -> Manifest:
        if tenant not in self._recovered:
            self.recover(tenant)
        return self.manifest(tenant)

    # -- ingest -------------------------------------------------------------------------

    def ingest(
        self,
        tenant: str,
        labels: Mapping[str, str],
        ts_ns: Sequence[int] | np.ndarray,
        lines: Sequence[bytes],
        *,
        position: OffsetRange | tuple[str, int, int, int] | None = None,
    ) -> IngestReport:
        """Store ``lines`` of one stream with their timestamps (int64 ns UTC).

        Lines are kept sorted by timestamp (stable: equal timestamps keep their order).
        An entry may hold newlines (a stack trace) and is read back whole. Timestamps
        outside 1970..2116 are dropped and counted in the report. With ``position`` the
        call is idempotent: a range at or before the last one recorded for its
        ``(source, partition)`` is a no-op (``duplicate``).
        """
        tenant = validate_tenant(tenant)
        checked = _check_labels(labels)
        if len(ts_ns) != len(lines):
            raise StoreError(
                f"{len(ts_ns)} timestamps for {len(lines)} lines",
                tenant=tenant,
                stream=format_labels(checked),
            )
        try:
            ts = np.asarray(ts_ns, dtype=np.int64).reshape(len(lines))
        except (TypeError, ValueError, OverflowError) as exc:
            raise StoreError(
                f"timestamps must be int64 nanoseconds: {exc}", tenant=tenant
            ) from None
        report = IngestReport(tenant=tenant)
        group = self._clean_group(checked, ts, list(lines), report)
        self._commit(tenant, [_Part([group], position, report)])
        return report

    def ingest_batch(
        self,
        tenant: str,
        batch: pa.Table | pa.RecordBatch,
        *,
        position: OffsetRange | tuple[str, int, int, int] | None = None,
    ) -> IngestReport:
        """Store a LogBatch (``ts``, ``labels`` in ``{a="b"}`` form, ``line``; see
        :mod:`logpipe.records`), grouped by stream; atomic and idempotent like :meth:`ingest`.

        Per-row problems are counted, not raised: ``no_timestamp`` (null ``ts``),
        ``invalid_labels``, ``timestamp_out_of_range``. A ``template`` column (string, as
        the daemon's parse stage adds) is used as each line's template instead of mining
        the segment again, with ``premasked`` (the stage's premask) for the line layouts
        (see :func:`logpipe.archive.codec.encode_segment`).
        """
        return self.ingest_batches(tenant, [(batch, position)])[0]

    def ingest_batches(
        self,
        tenant: str,
        parts: Sequence[
            tuple[pa.Table | pa.RecordBatch, OffsetRange | tuple[str, int, int, int] | None]
        ],
    ) -> list[IngestReport]:
        """Store several LogBatches, each with its own offset range, in **one** atomic
        write: one segment per stream for all of them (not one per part), and one manifest
        update recording every range. A report per part, in order.

        Why: the daemon's flush holds one batch per Kafka partition; writing them apart
        made a segment per partition and stream and a manifest rewrite per partition.
        A part whose range is already stored is skipped (its report says ``duplicate``);
        a range that overlaps a stored one fails the whole call (StoreError), as in
        :meth:`ingest`. Within a stream, lines of equal timestamps keep the parts' order.
        """
        tenant = validate_tenant(tenant)
        todo = []
        for batch, position in parts:
            report = IngestReport(tenant=tenant)
            todo.append(_Part(self._group_batch(tenant, batch, report), position, report))
        self._commit(tenant, todo)
        return [part.report for part in todo]

    def _group_batch(
        self, tenant: str, batch: pa.Table | pa.RecordBatch, report: IngestReport
    ) -> list[_Group]:
        """A LogBatch's storable lines, one group per stream (drops counted in ``report``)."""
        missing = [c for c in ("ts", "labels", "line") if c not in batch.schema.names]
        if missing:
            raise StoreError(f"batch lacks column(s) {', '.join(missing)}", tenant=tenant)
        ts_col = batch.column("ts")
        if pa.types.is_timestamp(ts_col.type):
            ts_col = pc.cast(ts_col, pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        elif not pa.types.is_integer(ts_col.type):
            raise StoreError(f"column ts has type {ts_col.type}, not a timestamp", tenant=tenant)
        valid = pc.is_valid(ts_col).to_numpy(zero_copy_only=False)
        report.reject("no_timestamp", int((~valid).sum()))
        ts_all = pc.fill_null(ts_col, 0).cast(pa.int64()).to_numpy(zero_copy_only=False)
        label_text = pc.dictionary_encode(batch.column("labels").cast(pa.string()))
        if isinstance(label_text, pa.ChunkedArray):
            label_text = label_text.combine_chunks()
        codes = label_text.indices.to_numpy(zero_copy_only=False)
        lines_all = batch.column("line").cast(pa.binary()).to_pylist()
        hints_all = _hints(batch)
        by_stream: dict[str, tuple[dict[str, str], list[int]]] = {}
        for code, text in enumerate(label_text.dictionary.to_pylist()):
            rows = np.flatnonzero((codes == code) & valid).tolist()
            if not rows:
                continue
            try:
                labels = _check_labels(parse_labels(text))
            except (LabelError, StoreError):
                report.reject("invalid_labels", len(rows))
                continue
            sid = make_stream_id(labels)
            by_stream.setdefault(sid, (labels, []))[1].extend(rows)
        groups = []
        for labels, rows in by_stream.values():
            rows.sort()  # two spellings of one label set: keep the batch's order
            hints = None
            if hints_all is not None:
                hints = hints_all.take(from_numpy(np.asarray(rows, dtype=np.int64)))
            lines = [lines_all[r] for r in rows]
            groups.append(self._clean_group(labels, ts_all[rows], lines, report, hints))
        return groups

    @staticmethod
    def _clean_group(
        labels: dict[str, str],
        ts: np.ndarray,
        lines: list[bytes],
        report: IngestReport,
        hints: pa.Table | None = None,
    ) -> _Group:
        """The group without the lines that cannot be stored (counted in ``report``)."""
        for line in lines:
            if not isinstance(line, bytes | bytearray):
                raise StoreError(f"lines must be bytes, not {type(line).__name__}")
        ok = (ts >= 0) & (ts <= MAX_TS_NS)
        report.reject("timestamp_out_of_range", int((~ok).sum()))
        keep = np.flatnonzero(ok)  # a multi-line entry is stored whole (segfile's cont)
        kept_lines = [bytes(lines[i]) for i in keep.tolist()]
        if hints is not None and len(keep) != len(lines):
            hints = hints.take(from_numpy(keep.astype(np.int64)))
        return _Group(labels, ts[keep], kept_lines, hints)

    def _check_position(
        self,
        tenant: str,
        offsets: Mapping[tuple[str, int], int],
        position: tuple[str, int, int, int] | None,
    ) -> tuple[tuple[tuple[str, int], int] | None, bool]:
        """The ``(source, partition), last`` to record (None: nothing) and whether the
        range is a duplicate of one in ``offsets``."""
        if position is None:
            return None, False
        try:
            source, partition, first, last = position
        except (TypeError, ValueError):
            raise StoreError(
                "position must be (source, partition, first_offset, last_offset)", tenant=tenant
            ) from None
        if (
            not isinstance(source, str)
            or not all(type(v) is int for v in (partition, first, last))
            or first < 0
            or first > last
        ):
            raise StoreError(
                f"bad offset range {position!r}: need a source name and "
                "0 <= first_offset <= last_offset",
                tenant=tenant,
            )
        done = offsets.get((source, partition))
        if done is not None and last <= done:
            return None, True
        if done is not None and first <= done:
            raise StoreError(
                f"offsets {first}..{last} of {source}[{partition}] overlap those already "
                f"stored (up to {done}); send from {done + 1}",
                tenant=tenant,
            )
        return ((source, partition), last), False

    def _commit(self, tenant: str, parts: list[_Part]) -> None:
        """Write every part that is not a duplicate as one segment per stream, then the
        manifest with their offsets: one atomic update (fills in the parts' reports)."""
        with self._lock:
            manifest = self._writer_manifest(tenant)
            offsets = dict(manifest.offsets)
            recorded = False
            live: list[_Part] = []
            for part in parts:
                update, duplicate = self._check_position(tenant, offsets, part.position)
                if duplicate:
                    part.report.duplicate = True
                    continue
                if update is not None:
                    offsets[update[0]] = update[1]
                    recorded = True
                live.append(part)
            groups = _merge_groups([g for part in live for g in part.groups])
            written: list[SegmentEntry] = []
            try:
                seq = manifest.next_seq
                for group in groups:
                    for entry in self._write_group(tenant, group, seq):
                        written.append(entry)
                        seq = entry.seq + 1
                if written or recorded:
                    self._save(manifest.updated(add=written, offsets=offsets))
            except BaseException:
                for entry in written:  # best effort; a crash leaves orphans for recover()
                    self.files.delete(f"{self._tenant_dir(tenant)}/{entry.path}")
                raise
        paths = [e.path for e in written]
        size = sum(e.bytes for e in written)
        for part in live:
            part.report.accepted += sum(len(g.lines) for g in part.groups)
            part.report.streams += sum(1 for g in part.groups if g.lines)
            part.report.segments += paths
            part.report.bytes_written += size

    def _chunks(self, ts: np.ndarray, lines: list[bytes]) -> Iterator[tuple[int, int]]:
        """``[a, b)`` row ranges of one sorted stream: cut by raw size and time span."""
        start, size = 0, 0
        for i, line in enumerate(lines):
            if i > start and (
                size + len(line) + 1 > self.segment_bytes
                or (self.segment_span_ns is not None and ts[i] - ts[start] >= self.segment_span_ns)
            ):
                yield start, i
                start, size = i, 0
            size += len(line) + 1
        if start < len(lines):
            yield start, len(lines)

    def _write_group(self, tenant: str, group: _Group, seq: int) -> Iterator[SegmentEntry]:
        """The group's lines sorted by time (stably) and cut into segments from ``seq``."""
        if not group.lines:
            return
        order = np.argsort(group.ts, kind="stable")
        ts = group.ts[order]
        lines = [group.lines[i] for i in order.tolist()]
        hints = None if group.hints is None else group.hints.take(from_numpy(order))
        for a, b in self._chunks(ts, lines):
            part = None if hints is None else hints.slice(a, b - a)
            chunk_ts = np.ascontiguousarray(ts[a:b])
            yield self._write_segment(
                tenant, group.labels, chunk_ts, lines[a:b], hints=part, seq=seq
            )
            seq += 1

    def _write_segment(
        self,
        tenant: str,
        labels: Mapping[str, str],
        ts: np.ndarray,
        lines: list[bytes],
        *,
        hints: pa.Table | None,
        seq: int,
    ) -> SegmentEntry:
        """One segment file of sorted lines (complete and durable when this returns) and
        its manifest entry, content index included."""
        sid = make_stream_id(labels)
        try:
            encoded = encode_lines(lines, ts, hints=hints)
        except ValueError as exc:
            raise StoreError(
                f"cannot encode: {exc}", tenant=tenant, stream=format_labels(labels)
            ) from exc
        min_ts, max_ts = int(ts[0]), int(ts[-1])
        name = f"streams/{sid}/{min_ts:019d}-{seq:09d}-{os.urandom(3).hex()}.lpz"
        meta = {"tenant": tenant, "stream": sid, "labels": dict(labels), "seq": seq}
        size = self.files.put_built(
            f"{self._tenant_dir(tenant)}/{name}",
            functools.partial(write_segment_file, encoded=encoded, meta=meta, level=self.level),
        )
        return SegmentEntry(
            path=name,
            stream=sys.intern(sid),
            labels={sys.intern(k): sys.intern(v) for k, v in labels.items()},  # held per entry
            seq=seq,
            min_ts=min_ts,
            max_ts=max_ts,
            lines=len(lines),
            bytes=size,
            raw_bytes=sum(map(len, lines)),
            index=build_index(encoded.header, encoded.streams),
        )

    # -- queries ------------------------------------------------------------------------

    def _may_hold(self, tenant: str, entry: SegmentEntry, needles: Sequence[str]) -> bool:
        """Whether a segment's 8-gram filter lets every needle through (reads only it)."""
        rel = f"{self._tenant_dir(tenant)}/{entry.path}"
        where = {"tenant": tenant, "stream": format_labels(entry.labels), "path": entry.path}
        try:
            return may_hold_needles(self.files.open_input(rel), entry.path, needles)
        except FileNotFoundError:
            raise StoreError("segment listed in the manifest is missing", **where) from None
        except (OSError, ArchiveError, SegmentError, KeyError, ValueError) as exc:
            raise StoreError(f"segment is damaged: {exc}", **where) from None

    def _load(
        self, tenant: str, entry: SegmentEntry, needle: str | None = None
    ) -> tuple[np.ndarray, pa.Array]:
        """Open one segment: its timestamps and lines (StoreError on any damage); with a
        ``needle``, only the lines holding it."""
        rel = f"{self._tenant_dir(tenant)}/{entry.path}"
        where = {"tenant": tenant, "stream": format_labels(entry.labels), "path": entry.path}
        try:
            file = self.files.open_input(rel)
        except FileNotFoundError:
            raise StoreError("segment listed in the manifest is missing", **where) from None
        except OSError as exc:
            raise StoreError(f"cannot open segment: {exc}", **where) from None
        try:
            ts, lines, rows = read_segment_file(file, entry.path, needle)
        except (ArchiveError, SegmentError, KeyError, ValueError) as exc:
            raise StoreError(f"segment is damaged: {exc}", **where) from None
        if len(ts) != entry.lines or (
            len(ts) and (int(ts[0]) != entry.min_ts or int(ts[-1]) != entry.max_ts)
        ):
            raise StoreError("segment does not match its manifest entry", **where)
        return (ts if rows is None else ts[rows]), lines

    def streams(
        self,
        tenant: str,
        matchers: Sequence[LabelMatcher] = (),
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[dict[str, str]]:
        """Label sets of the streams that match and have data in ``[start, end)``
        (segment granularity, as Loki's index), sorted by their text form."""
        start, end = _bounds(start_ns, end_ns)
        segments = [s for s in self.manifest(tenant).segments if s.overlaps(start, end)]
        found = matching_streams(segments, matchers)
        return sorted((dict(v) for v in found.values()), key=format_labels)

    def read(
        self,
        tenant: str,
        matchers: Sequence[LabelMatcher] = (),
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        direction: Direction = "backward",
        limit: int | None = None,
        contains: Sequence[str] = (),
    ) -> Iterator[pa.RecordBatch]:
        """The matching streams' lines with ``start <= ts < end``, as batches of
        ``ts`` (timestamp ns UTC), ``stream`` (label text, dictionary) and ``line``.

        ``direction`` ``backward`` (Loki's default) is newest first. ``contains``: line
        filters (``|= "x"``), ANDed; segments whose content index rules one out are not
        opened. Only segments that overlap the range and belong to a matching stream are
        opened, in order, and none after ``limit`` lines.
        """
        if direction not in ("forward", "backward"):
            raise StoreError(f"direction must be forward or backward, not {direction!r}")
        if limit is not None and limit < 0:
            raise StoreError("limit must not be negative")
        start, end = _bounds(start_ns, end_ns)
        manifest = self.manifest(tenant)
        chosen = candidates(manifest.segments, matchers, start, end, contains)
        needle = max(contains, key=len) if contains else None  # searched in compressed form
        if any(len(n.encode("utf-8")) >= GRAM for n in contains):  # the 8-gram filters
            chosen = [e for e in chosen if self._may_hold(manifest.tenant, e, contains)]
        return merge_rows(
            chosen,
            lambda entry: self._load(manifest.tenant, entry, needle),
            start,
            end,
            direction=direction,
            limit=limit,
            needles=contains,
        )

    def label_names(
        self, tenant: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[str]:
        """Label names of streams with data in the range, sorted."""
        names: set[str] = set()
        for labels in self.streams(tenant, (), start_ns, end_ns):
            names.update(labels)
        return sorted(names)

    def label_values(
        self,
        tenant: str,
        name: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        matchers: Sequence[LabelMatcher] = (),
    ) -> list[str]:
        """Values of label ``name`` among matching streams with data in the range, sorted."""
        values = {
            labels[name]
            for labels in self.streams(tenant, matchers, start_ns, end_ns)
            if name in labels
        }
        return sorted(values)

    def series(
        self,
        tenant: str,
        matcher_sets: Iterable[Sequence[LabelMatcher]],
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[dict[str, str]]:
        """Streams matching any of the selectors (Loki's ``/series`` ORs its ``match[]``)."""
        found: dict[str, dict[str, str]] = {}
        for matchers in matcher_sets:
            for labels in self.streams(tenant, matchers, start_ns, end_ns):
                found.setdefault(format_labels(labels), labels)
        return [found[k] for k in sorted(found)]

    def stats(
        self,
        tenant: str,
        matchers: Sequence[LabelMatcher] = (),
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> StoreStats:
        """Loki's ``/index/stats`` for a selector over a range (from the manifest only)."""
        start, end = _bounds(start_ns, end_ns)
        chosen = candidates(self.manifest(tenant).segments, matchers, start, end)
        return StoreStats(
            streams=len({s.stream for s in chosen}),
            chunks=len(chosen),
            entries=sum(s.lines for s in chosen),
            bytes=sum(s.raw_bytes for s in chosen),
        )

    # -- retention and compaction -------------------------------------------------------

    def apply_retention(
        self,
        tenant: str | None = None,
        *,
        max_age_ns: int | None = None,
        max_bytes: int | None = None,
        now_ns: int | None = None,
    ) -> RetentionReport:
        """Delete whole segments older than ``max_age_ns`` (by their newest line), then the
        oldest while a tenant's segment files exceed ``max_bytes``. All tenants when
        ``tenant`` is None; ``now_ns`` defaults to the wall clock. The files go after
        ``delete_delay_s`` (see :meth:`collect_garbage`)."""
        now = time.time_ns() if now_ns is None else now_ns
        report = RetentionReport()
        self.collect_garbage()
        for name in [validate_tenant(tenant)] if tenant is not None else self.tenants():
            with self._lock:
                manifest = self._writer_manifest(name)
                doomed = select_expired(
                    manifest.segments, max_age_ns=max_age_ns, max_bytes=max_bytes, now_ns=now
                )
                if not doomed:
                    continue
                self._save(manifest.updated(remove=[s.path for s, _ in doomed]))
                self._retire(name, [s.path for s, _ in doomed])
            for s, reason in doomed:
                report.removed.append((name, s.path, reason))
                report.bytes_freed += s.bytes
                report.lines_removed += s.lines
        return report

    def compact(
        self,
        tenant: str | None = None,
        *,
        target_bytes: int | None = None,
        max_span_ns: int | None = None,
        expired_before_ns: int | None = None,
        max_jobs: int | None = None,
    ) -> CompactionReport:
        """Merge small adjacent segments of each stream (plan: :mod:`logpipe.store.compaction`).

        ``target_bytes`` (default ``segment_bytes``) and ``max_span_ns`` (default
        ``segment_span_ns``) bound a merged segment; ``expired_before_ns``: leave segments
        whose newest line is older to retention; ``max_jobs``: stop after that many merges
        (the rest wait for the next call). All tenants when ``tenant`` is None.

        Each merge: the new segment file is written completely, *then* the manifest swaps
        the inputs for it in one atomic write, *then* the inputs are deleted (after
        ``delete_delay_s``). A crash before the swap leaves the new file as an orphan, after
        it the inputs: the next writer removes orphans, so nothing is lost or stored twice,
        and a reader's manifest lists either the inputs or the merged segment, never both.
        Results of any query are the same before and after (the module docstring says why).
        """
        target = self.segment_bytes if target_bytes is None else target_bytes
        if target < 1:
            raise StoreError("target_bytes must be positive")
        span = self.segment_span_ns if max_span_ns is None else max_span_ns
        report = CompactionReport()
        self.collect_garbage()
        for name in [validate_tenant(tenant)] if tenant is not None else self.tenants():
            with self._lock:
                manifest = self._writer_manifest(name)
            jobs = plan_compaction(
                manifest.segments,
                target_bytes=target,
                max_span_ns=span,
                expired_before_ns=expired_before_ns,
            )
            for job in jobs:
                if max_jobs is not None and report.merges >= max_jobs:
                    return report
                self._merge(name, job, report)
        return report

    def _merge(self, tenant: str, job: CompactionJob, report: CompactionReport) -> None:
        """One compaction job: write, swap, retire (see :meth:`compact`)."""
        try:
            loaded = [self._load(tenant, entry) for entry in job.inputs]
        except StoreError as exc:  # retention took an input meanwhile, or it is damaged
            report.skipped += 1
            report.problems.append(str(exc))
            return
        ts = np.concatenate([t for t, _ in loaded])
        lines = [line for _, col in loaded for line in col.to_pylist()]
        order = np.argsort(ts, kind="stable")  # inputs in seq order: ties keep (seq, row)
        first = job.inputs[0]
        entry = self._write_segment(
            tenant,
            first.labels,
            ts[order],
            [lines[i] for i in order.tolist()],
            hints=None,
            seq=first.seq,
        )
        rel = f"{self._tenant_dir(tenant)}/{entry.path}"
        gone = [s.path for s in job.inputs]
        try:
            with self._lock:
                current = self._writer_manifest(tenant)
                listed = {s.path for s in current.segments}
                if not all(path in listed for path in gone):  # retention won the race
                    self.files.delete(rel)
                    report.skipped += 1
                    return
                self._save(current.updated(add=[entry], remove=gone))
                self._retire(tenant, gone)
        except BaseException:
            self.files.delete(rel)  # best effort; a crash leaves an orphan for recover()
            raise
        report.merges += 1
        report.segments_in += len(job.inputs)
        report.lines += entry.lines
        report.bytes_in += sum(s.bytes for s in job.inputs)
        report.bytes_out += entry.bytes

    def _retire(self, tenant: str, paths: Iterable[str]) -> None:
        """Files the manifest no longer lists: deleted now, or after ``delete_delay_s``
        so that queries that began with the old manifest can still open them."""
        due = time.monotonic() + self.delete_delay_s
        self._doomed.extend((due, f"{self._tenant_dir(tenant)}/{p}") for p in paths)
        if self.delete_delay_s <= 0:
            self._delete_due(due)

    def collect_garbage(self) -> int:
        """Delete retired files whose delay has passed (retention and compaction call it;
        a daemon's maintenance loop does). How many were deleted."""
        with self._lock:
            return self._delete_due(time.monotonic())

    def _delete_due(self, now: float) -> int:
        due = [rel for at, rel in self._doomed if at <= now]
        self._doomed = [(at, rel) for at, rel in self._doomed if at > now]
        for rel in due:
            self.files.delete(rel)
        for parent in sorted({rel.rpartition("/")[0] for rel in due}):
            if "/streams/" in parent:
                self.files.remove_empty_dir(parent)
        return len(due)
