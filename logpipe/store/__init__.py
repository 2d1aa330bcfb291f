"""The log store: Loki-style streams of timestamped lines in immutable archive segments.

See :mod:`logpipe.store.store` for the layout and the write protocol. Modules, one job each:
``tenants`` (tenant ids), ``fsio`` (files on any ``pyarrow.fs`` file system), ``segfile``
(one segment file), ``index`` (what a segment may contain), ``manifest`` (the per-tenant
index), ``query`` (stream/segment selection and time-ordered merge), ``retention``
(which segments expire), ``compaction`` (which small segments to merge), ``store`` (the
:class:`Store` tying them together).
"""

from __future__ import annotations

from logpipe.errors import StoreError
from logpipe.store.index import ContentIndex, may_contain
from logpipe.store.manifest import Manifest, SegmentEntry
from logpipe.store.query import READ_SCHEMA
from logpipe.store.store import (
    DEFAULT_SEGMENT_BYTES,
    CompactionReport,
    IngestReport,
    OffsetRange,
    RetentionReport,
    Store,
    StoreStats,
)
from logpipe.store.tenants import DEFAULT_TENANT, validate_tenant

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "DEFAULT_TENANT",
    "READ_SCHEMA",
    "CompactionReport",
    "ContentIndex",
    "IngestReport",
    "Manifest",
    "OffsetRange",
    "RetentionReport",
    "SegmentEntry",
    "Store",
    "StoreError",
    "StoreStats",
    "may_contain",
    "validate_tenant",
]
