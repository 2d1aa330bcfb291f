"""Writers for ``logpipe parse`` results: Loghub-style CSV, JSON lines and Parquet.

One pair of files per input, named after it:

* ``<name>_structured.<ext>``: one row per input line, in input order, with columns
  ``LineId``, each header field of the log format in order, ``Content``, ``EventId``,
  ``EventTemplate``, ``ParameterList``. This is the column set Loghub's tools read.
  JSON lines and Parquet add ``Error`` (``invalid_utf8``, ``no_format_match``, ``truncated``,
  comma-separated, null when clean); the CSV keeps exactly Loghub's columns, so tools that
  compare against Loghub's ground truth read it unchanged.
* ``<name>_templates.<ext>``: ``EventId``, ``EventTemplate``, ``Occurrences``.

The CSV is RFC 4180 with minimal quoting and ``\\n`` line ends, as pandas writes Loghub's
files. ``ParameterList`` is Python's ``str(list)`` (``['blk_1', '10.0.0.1']``) in CSV and a
real array in JSON lines and Parquet.

Every file is written under a temporary name in the same directory and renamed into place
when complete, so a crash or an interrupted run never leaves a half-written result that
looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from logpipe.io.textenc import (
    csv_field,
    csv_rows,
    json_string,
    json_string_list,
    python_list_repr,
    rows_buffer,
)

__all__ = [
    "OutputFormat",
    "StructuredRows",
    "StructuredWriter",
    "TemplateRow",
    "open_structured_writer",
    "output_paths",
    "write_templates",
]


class OutputFormat(StrEnum):
    """The file formats ``--output-format`` accepts."""

    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


@dataclass(frozen=True)
class StructuredRows:
    """One batch of parsed lines, column by column (all arrays have the same length).

    ``fields`` maps header field names to string arrays (null where the line did not match
    the format); ``params`` is ``list<string>``; ``error`` is a nullable string array.
    """

    line_id: pa.Array
    fields: dict[str, pa.Array]
    content: pa.Array
    event_id: pa.Array
    template: pa.Array
    params: pa.Array
    error: pa.Array


@dataclass(frozen=True)
class TemplateRow:
    """One line of the templates file."""

    event_id: str
    template: str
    occurrences: int


class StructuredWriter(Protocol):
    """Appends row batches to ``<name>_structured.<ext>``; ``close`` publishes the file.

    ``encode`` is pure (safe to call from worker threads, in any order); ``write_encoded``
    appends its result and must be called in row order. ``write`` does both.
    """

    path: Path

    def encode(self, rows: StructuredRows) -> Any: ...

    def write_encoded(self, encoded: Any) -> None: ...

    def write(self, rows: StructuredRows) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def output_paths(out_dir: Path, name: str, fmt: OutputFormat) -> tuple[Path, Path]:
    """The structured and templates paths for input ``name``."""
    ext = fmt.value
    return out_dir / f"{name}_structured.{ext}", out_dir / f"{name}_templates.{ext}"


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


class _FileWriter:
    """Shared temp-file-then-rename handling; subclasses encode rows to bytes."""

    def encode(self, rows: StructuredRows) -> Any:
        raise NotImplementedError

    def write_encoded(self, encoded: Any) -> None:
        self._fh.write(encoded)

    def write(self, rows: StructuredRows) -> None:
        self.write_encoded(self.encode(rows))

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = _temp_path(path)
        self._fh: BinaryIO = open(self._tmp, "wb")  # noqa: SIM115 - closed in close/abort

    def close(self) -> None:
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


_CSV_ROWS = pa_csv.WriteOptions(include_header=False, batch_size=1 << 16)


class CsvWriter(_FileWriter):
    """Loghub-compatible ``_structured.csv``."""

    def __init__(self, path: Path, field_names: Sequence[str]) -> None:
        super().__init__(path)
        header = ["LineId", *field_names, "Content", "EventId", "EventTemplate", "ParameterList"]
        self._fields = tuple(field_names)
        self._fh.write(_csv_header(header))

    def encode(self, rows: StructuredRows) -> Any:
        # Arrow's CSV writer quotes every string value (RFC 4180, so pandas, Python's csv
        # module and Loghub's evaluator read it as usual) and is an order of magnitude
        # faster than escaping column by column.
        columns = [
            rows.line_id,
            *(rows.fields[name] for name in self._fields),
            rows.content,
            pc.fill_null(rows.event_id, ""),
            rows.template,
            python_list_repr(rows.params),
        ]
        table = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, _CSV_ROWS)
        return sink.getvalue()


class JsonlWriter(_FileWriter):
    """``_structured.jsonl``: one JSON object per line, keys as in the CSV plus ``Error``."""

    def __init__(self, path: Path, field_names: Sequence[str]) -> None:
        super().__init__(path)
        self._fields = tuple(field_names)
        names = ["LineId", *field_names, "Content", "EventId", "EventTemplate"]
        names += ["ParameterList", "Error"]
        self._keys = [_json_key(n) for n in names]

    def encode(self, rows: StructuredRows) -> Any:
        values = [
            rows.line_id.cast(pa.string()),
            *(json_string(rows.fields[name]) for name in self._fields),
            json_string(rows.content),
            json_string(pc.fill_null(rows.event_id, "")),
            json_string(rows.template),
            json_string_list(rows.params),
            json_string(rows.error),
        ]
        parts: list[Any] = []
        for i, (key, value) in enumerate(zip(self._keys, values, strict=True)):
            parts.append(("{" if i == 0 else ",") + key)
            parts.append(value)
        parts.append("}\n")
        return rows_buffer(pc.binary_join_element_wise(*parts, ""))


class ParquetWriter:
    """``_structured.parquet`` with typed columns (``LineId`` int64, ``ParameterList`` list)."""

    def __init__(self, path: Path, field_names: Sequence[str]) -> None:
        self.path = path
        self._tmp = _temp_path(path)
        self._fields = tuple(field_names)
        self._schema = pa.schema(
            [
                pa.field("LineId", pa.int64()),
                *(pa.field(name, pa.string()) for name in field_names),
                pa.field("Content", pa.string()),
                pa.field("EventId", pa.string()),
                pa.field("EventTemplate", pa.string()),
                pa.field("ParameterList", pa.list_(pa.string())),
                pa.field("Error", pa.string()),
            ]
        )
        import pyarrow.parquet as pq  # noqa: PLC0415 - only parquet output pays its import

        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")

    def encode(self, rows: StructuredRows) -> Any:
        arrays = [
            rows.line_id,
            *(rows.fields[name] for name in self._fields),
            rows.content,
            pc.fill_null(rows.event_id, ""),
            rows.template,
            rows.params,
            rows.error,
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def write_encoded(self, encoded: Any) -> None:
        self._writer.write_batch(encoded)

    def write(self, rows: StructuredRows) -> None:
        self.write_encoded(self.encode(rows))

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


def open_structured_writer(
    fmt: OutputFormat, out_dir: Path, name: str, field_names: Sequence[str]
) -> StructuredWriter:
    """Open ``<out_dir>/<name>_structured.<ext>`` for writing (published on ``close``)."""
    path, _ = output_paths(out_dir, name, fmt)
    if fmt is OutputFormat.CSV:
        return CsvWriter(path, field_names)
    if fmt is OutputFormat.JSONL:
        return JsonlWriter(path, field_names)
    return ParquetWriter(path, field_names)


def write_templates(
    fmt: OutputFormat, out_dir: Path, name: str, templates: Sequence[TemplateRow]
) -> Path:
    """Write ``<out_dir>/<name>_templates.<ext>`` (rows in the order given)."""
    _, path = output_paths(out_dir, name, fmt)
    ids = pa.array([t.event_id for t in templates], pa.string())
    texts = pa.array([t.template for t in templates], pa.string())
    counts = pa.array([t.occurrences for t in templates], pa.int64())
    tmp = _temp_path(path)
    try:
        if fmt is OutputFormat.PARQUET:
            import pyarrow.parquet as pq  # noqa: PLC0415

            table = pa.table({"EventId": ids, "EventTemplate": texts, "Occurrences": counts})
            pq.write_table(table, tmp, compression="zstd")
        else:
            with open(tmp, "wb") as fh:
                if fmt is OutputFormat.CSV:
                    fh.write(_csv_header(["EventId", "EventTemplate", "Occurrences"]))
                    if templates:
                        columns = [ids, csv_field(texts), counts.cast(pa.string())]
                        fh.write(rows_buffer(csv_rows(columns)))
                elif templates:
                    parts = [
                        '{"EventId":',
                        json_string(ids),
                        ',"EventTemplate":',
                        json_string(texts),
                        ',"Occurrences":',
                        counts.cast(pa.string()),
                        "}\n",
                    ]
                    fh.write(rows_buffer(pc.binary_join_element_wise(*parts, "")))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _csv_header(names: Sequence[str]) -> bytes:
    escaped = csv_field(pa.array(list(names), pa.string())).to_pylist()
    return (",".join(escaped) + "\n").encode("utf-8")


def _json_key(name: str) -> str:
    return str(json_string(pa.array([name], pa.string()))[0].as_py()) + ":"
