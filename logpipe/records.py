"""The LogBatch: one Arrow schema that every pipeline stage reads and extends.

Why Arrow: stages hand each other whole batches, so the hot work (header regexes, masking,
grouping, writing) runs vectorised in Arrow's C++ kernels instead of per line in Python, and
the archive and query stages read the same columns without conversion.

Columns of a raw batch (what a source produces):

========== ============================ ==================================================
name       type                         meaning
========== ============================ ==================================================
ts         timestamp[ns, UTC], nullable when the record happened (null until known)
labels     dictionary<int32, string>    the stream's label set in LogQL form ``{a="b"}``
line       binary                       the raw line, terminator stripped, never decoded
source     dictionary<int32, string>    file path, ``-`` for stdin, or Kafka topic
partition  int32                        Kafka partition (0 for files)
offset     int64                        byte offset of the line in its source (file) or
                                        the Kafka offset; used for checkpoints and errors
lineno     int64                        1-based line number within the source
========== ============================ ==================================================

Parsing appends:

============ ===================== ====================================================
content      string                the message body (header stripped), valid UTF-8;
                                   undecodable bytes appear as U+FFFD here while ``line``
                                   keeps the original bytes
template_id  int64, nullable       the mined template's id
params       list<string>          the variable values, in template order
error        string, nullable      why a line was only partly handled (``no_format_match``,
                                   ``invalid_utf8``, ``truncated``), null when clean
============ ===================== ====================================================

The daemon's parse stage (:mod:`logpipe.pipeline.parse_stage`) adds ``template_id``,
``params``, ``template`` (dictionary<int32, string>, the template text) and ``premasked``
(dictionary<int32, string>, the line with plain numbers as ``<*>``, which the store reads
whitespace layouts from).

plus one ``string`` column per header field of the log format (``Date``, ``Level``...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy

__all__ = [
    "PARSED_FIELDS",
    "RAW_SCHEMA",
    "ErrorReason",
    "raw_batch",
]

LABEL_TYPE = pa.dictionary(pa.int32(), pa.string())

RAW_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=True),
        pa.field("labels", LABEL_TYPE, nullable=False),
        pa.field("line", pa.binary(), nullable=False),
        pa.field("source", LABEL_TYPE, nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("lineno", pa.int64(), nullable=False),
    ]
)

PARSED_FIELDS = [
    pa.field("content", pa.string(), nullable=False),
    pa.field("template_id", pa.int64(), nullable=True),
    pa.field("params", pa.list_(pa.string()), nullable=False),
    pa.field("error", pa.string(), nullable=True),
]


class ErrorReason:
    """The values of the ``error`` column: a per-line problem is data, not an exception."""

    NO_FORMAT_MATCH = "no_format_match"
    INVALID_UTF8 = "invalid_utf8"
    TRUNCATED = "truncated"


def raw_batch(
    lines: Sequence[bytes] | pa.Array,
    *,
    source: str = "-",
    offsets: Sequence[int] | np.ndarray | None = None,
    first_lineno: int = 1,
    labels: str | pa.Array = "{}",
    partition: int = 0,
    ts: np.ndarray | pa.Array | None = None,
    line_numbers: np.ndarray | None = None,
) -> pa.RecordBatch:
    """Build a raw LogBatch from undecoded lines (terminators already stripped).

    ``lines`` may be a ready ``binary`` array (the readers' fast path: no per-line Python
    objects); ``offsets`` default to the lines laid end to end with one-byte terminators.
    ``labels`` is one label text for every row, or an array with one per row (Kafka
    envelopes carry their own). ``ts`` (int64 ns) is null when not known yet;
    ``line_numbers`` default to counting from ``first_lineno``.
    """
    line_array = lines if isinstance(lines, pa.Array) else pa.array(lines, pa.binary())
    n = len(line_array)
    if offsets is None:
        sizes = pc.add(pc.binary_length(line_array), 1).to_numpy(zero_copy_only=False)
        offsets = np.concatenate(([0], np.cumsum(sizes)))[:n].astype(np.int64)
    zeros = from_numpy(np.zeros(n, dtype=np.int32))
    ts_type = RAW_SCHEMA.field("ts").type
    if ts is None:
        ts_array = pa.nulls(n, ts_type)
    else:
        raw_ts = from_numpy(np.asarray(ts, dtype=np.int64)) if isinstance(ts, np.ndarray) else ts
        ts_array = raw_ts.cast(pa.int64()).cast(ts_type)
    if isinstance(labels, str):
        label_array = pa.DictionaryArray.from_arrays(zeros, pa.array([labels], pa.string()))
    else:
        label_array = labels.cast(pa.string()).dictionary_encode()
    label_array = label_array.cast(RAW_SCHEMA.field("labels").type)
    if line_numbers is None:
        line_numbers = np.arange(first_lineno, first_lineno + n, dtype=np.int64)
    return pa.RecordBatch.from_arrays(
        [
            ts_array,
            label_array,
            line_array,
            pa.DictionaryArray.from_arrays(zeros, pa.array([source], pa.string())),
            from_numpy(np.full(n, partition, dtype=np.int32)),
            from_numpy(np.asarray(offsets, dtype=np.int64)),
            from_numpy(np.asarray(line_numbers, dtype=np.int64)),
        ],
        schema=RAW_SCHEMA,
    )
