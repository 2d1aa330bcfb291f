"""Loading log files into the store (``logpipe ingest``): frame, timestamp, store.

Why it looks like this: a log file on disk has no stream labels and no separate time
column, so both come from outside or from the text:

* **labels** are given once for the whole load (``{app="api"}``), as Promtail's static labels;
* **timestamps** come from the header: with a known ``log_format`` (a preset such as ``HDFS``
  or a format string) the format's time fields are read (:func:`timestamps_from_fields`);
  otherwise, or when that finds none, the layout is detected from the text
  (:func:`detect_timestamps`). A line without a time of its own (a stack-trace continuation)
  takes the time of the line before it; a file whose first lines have none starts at the
  file's modification time (:func:`fill_forward`).

Files stream in batches of lines, each stored atomically; memory stays bounded by the batch
size. Raw line bytes are stored exactly, only the line terminator (``\\n``, ``\\r\\n``) is dropped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.errors import UsageError
from logpipe.formats import PRESETS, Framer, compile_format, preset
from logpipe.io.decode import decode_lines
from logpipe.io.inputs import DEFAULT_BATCH_LINES, InputSource, expand_inputs, read_batches
from logpipe.labels import LabelError, format_labels, parse_labels
from logpipe.store import DEFAULT_TENANT, Store
from logpipe.timestamps import detect_timestamps, fill_forward, timestamps_from_fields

__all__ = ["FileLoad", "LoadReport", "load_files", "parse_stream_labels"]


@dataclass
class FileLoad:
    """What loading one file did: lines read and stored, lines whose time was carried
    forward from an earlier line (or the file's mtime), and lines the store refused."""

    path: str
    lines: int = 0
    stored: int = 0
    time_filled: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None


@dataclass
class LoadReport:
    """A whole ``logpipe ingest`` run."""

    tenant: str
    labels: str
    files: list[FileLoad] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "labels": self.labels,
            "lines": self.lines,
            "stored": self.stored,
            "files": [asdict(f) for f in self.files],
        }


def parse_stream_labels(text: str) -> dict[str, str]:
    """The ``--labels`` value as a non-empty label set (UsageError saying what is wrong)."""
    try:
        labels = parse_labels(text)
    except LabelError as exc:
        raise UsageError(f"--labels {text!r}: {exc} (at character {exc.offset})") from None
    if not labels:
        raise UsageError('--labels needs at least one label, e.g. {app="api"}')
    return labels


def _framer(log_format: str) -> Framer:
    if "<" not in log_format:
        if log_format.casefold() not in {name.casefold() for name in PRESETS}:
            raise UsageError(
                f"unknown log format {log_format!r}: give a preset ({', '.join(PRESETS)}), "
                "a format string such as '<Date> <Time> <Level>: <Content>', or auto"
            )
        return preset(log_format)
    return compile_format(log_format)


def _mtime_ns(source: InputSource) -> int:
    if source.is_stdin:
        return time.time_ns()
    try:
        return os.stat(source.path).st_mtime_ns
    except OSError:
        return time.time_ns()


def _timestamps(
    content: pa.Array, framer: Framer | None, log_format: str | None, tz: str
) -> pa.Array:
    """Each line's time from the format's fields, else detected; null where none."""
    if framer is not None:
        fields = framer.frame(content).fields
        ts = timestamps_from_fields(fields, log_format, tz=tz)
        if ts.null_count < len(ts):
            return ts
    return detect_timestamps(content, tz=tz)


def _load_file(
    store: Store,
    source: InputSource,
    label_text: str,
    *,
    tenant: str,
    framer: Framer | None,
    log_format: str | None,
    tz: str,
    batch_lines: int,
) -> FileLoad:
    report = FileLoad(path=source.path)
    carry = _mtime_ns(source)
    for read in read_batches(source, batch_lines=batch_lines):
        raw = read.batch.column("line")
        n = len(raw)
        if n == 0:
            continue
        content = decode_lines(raw).content
        ts = _timestamps(content, framer, log_format, tz)
        report.time_filled += ts.null_count
        ts = fill_forward(ts, carry)
        carry = ts[n - 1].as_py()
        lines = pc.replace_substring_regex(raw, pattern="\r$", replacement="")
        table = pa.table(
            {
                "ts": ts,
                "labels": pa.DictionaryArray.from_arrays(
                    pa.array([0] * n, pa.int32()), pa.array([label_text])
                ),
                "line": lines,
            }
        )
        ingested = store.ingest_batch(tenant, table)
        report.lines += n
        report.stored += ingested.accepted
        for reason, count in ingested.rejected.items():
            report.rejected[reason] = report.rejected.get(reason, 0) + count
        bounds = pc.min_max(ts)
        first, last = bounds["min"].as_py(), bounds["max"].as_py()
        report.first_ts_ns = first if report.first_ts_ns is None else min(report.first_ts_ns, first)
        report.last_ts_ns = last if report.last_ts_ns is None else max(report.last_ts_ns, last)
    return report


def load_files(
    store: Store,
    paths: Sequence[str],
    labels: dict[str, str],
    *,
    tenant: str = DEFAULT_TENANT,
    log_format: str | None = None,
    tz: str = "UTC",
    batch_lines: int = DEFAULT_BATCH_LINES,
) -> LoadReport:
    """Store every line of ``paths`` (files, directories, globs, ``-``) in the stream
    ``labels`` of ``tenant``. ``log_format`` None (or ``auto``) detects timestamps."""
    if log_format is not None and log_format.strip().lower() == "auto":
        log_format = None
    framer = _framer(log_format) if log_format is not None else None
    sources = expand_inputs(paths)  # every path is checked before anything is stored
    report = LoadReport(tenant=tenant, labels=format_labels(labels))
    for source in sources:
        report.files.append(
            _load_file(
                store,
                source,
                report.labels,
                tenant=tenant,
                framer=framer,
                log_format=log_format,
                tz=tz,
                batch_lines=batch_lines,
            )
        )
    return report
