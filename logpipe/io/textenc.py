"""Vectorised text encoders for output rows: CSV fields, JSON strings, Python list reprs.

Why not ``csv.writer``/``json.dumps``: those cost microseconds per row in Python, which alone
would eat the parse command's throughput budget. These functions escape whole Arrow arrays
with compute kernels and only touch Python for the rare values that need unusual escapes.

Why not ``pyarrow.csv.write_csv``: with ``quoting_style="needed"`` Arrow quotes *every* string
value, while Loghub's files (written by pandas) quote only the fields that must be quoted.
The rules here are RFC 4180 with minimal quoting, as pandas and Python's ``csv`` module do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "csv_field",
    "csv_rows",
    "json_string",
    "json_string_list",
    "python_list_repr",
    "rows_buffer",
]

# A CSV field must be quoted when it holds the delimiter, the quote or a line break.
_CSV_SPECIAL = '[",\r\n]'
# JSON strings must escape the quote, the backslash and every C0 control character.
_JSON_SPECIAL = r'["\\\x00-\x1f]'
_JSON_SHORT = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
# repr() of a str emits it between single quotes unchanged when every character is
# printable and neither a quote nor a backslash. Printability of non-ASCII characters depends
# on the Unicode version (Python's and RE2's tables differ), so only printable ASCII takes the
# fast path; anything else takes the exact (slow, rare in logs) repr() path.
_REPR_SPECIAL = r"[^\x20-\x7e]|['\\]"


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def csv_field(values: pa.Array) -> pa.Array:
    """Escape a string array as CSV fields: quote (doubling inner quotes) only where needed.

    Nulls become empty fields, as pandas writes NaN.
    """
    values = pc.fill_null(values, "")
    mask = pc.match_substring_regex(values, _CSV_SPECIAL)
    if not _any(mask):
        return values
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(mask, quoted, values)


def csv_rows(columns: Sequence[pa.Array]) -> pa.Array:
    """Join already-escaped string columns into CSV rows, each ending with ``\\n``."""
    row = pc.binary_join_element_wise(*columns, ",")
    return pc.binary_join_element_wise(row, "", "\n")


def rows_buffer(rows: pa.Array) -> pa.Buffer:
    """The bytes of a string array's values back to back (rows carry their own ``\\n``).

    Writing this one buffer is a single ``write`` call with no per-row Python work.
    """
    if len(rows) == 0:
        return pa.py_buffer(b"")
    if rows.null_count:
        raise ValueError("rows_buffer() needs an array without nulls")
    _, offsets_buf, data = rows.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)
    start = int(offsets[rows.offset])
    stop = int(offsets[rows.offset + len(rows)])
    return data.slice(start, stop - start)


def json_string(values: pa.Array) -> pa.Array:
    """Encode a string array as JSON string literals (``"..."``); nulls become ``null``."""
    mask = pc.fill_null(pc.match_substring_regex(values, _JSON_SPECIAL), False)
    if _any(mask):
        escaped = pc.replace_substring(values, "\\", "\\\\")
        escaped = pc.replace_substring(escaped, '"', '\\"')
        controls = pc.match_substring_regex(escaped, r"[\x00-\x1f]")
        if _any(controls):
            for code in range(32):
                char = chr(code)
                if _any(pc.fill_null(pc.match_substring(escaped, char), False)):
                    escaped = pc.replace_substring(
                        escaped, char, _JSON_SHORT.get(code, f"\\u{code:04x}")
                    )
        values = pc.if_else(mask, escaped, values)
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    return pc.fill_null(quoted, "null")


def _element_strings(params: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Zero-based offsets and flat values of a (possibly sliced) ``list<string>`` array."""
    offsets = params.offsets
    base = offsets[0]
    values = params.flatten()
    return pc.subtract(offsets, base).cast(pa.int32()), pc.fill_null(values, "")


def python_list_repr(params: pa.Array) -> pa.Array:
    """Render ``list<string>`` values as Python's ``str(list)``: ``['blk_1', '10.0.0.1']``.

    That is how Loghub's ParameterList column looks (its tools write ``str(list)``), so
    readers that ``ast.literal_eval`` it keep working. Null lists render as ``[]``.
    """
    if params.null_count:
        params = pc.fill_null(params, pa.scalar([], pa.list_(pa.string())))
    offsets, values = _element_strings(params)
    quoted = pc.binary_join_element_wise("'", values, "'", "")
    special = pc.match_substring_regex(values, _REPR_SPECIAL)
    if _any(special):
        exact = [repr(v) for v in values.filter(special).to_pylist()]
        quoted = pc.replace_with_mask(quoted, special, pa.array(exact, pa.string()))
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, quoted), ", ")
    return pc.binary_join_element_wise("[", joined, "]", "")


def json_string_list(params: pa.Array) -> pa.Array:
    """Render ``list<string>`` values as JSON arrays of strings; null lists as ``[]``."""
    if params.null_count:
        params = pc.fill_null(params, pa.scalar([], pa.list_(pa.string())))
    offsets, values = _element_strings(params)
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, json_string(values)), ",")
    return pc.binary_join_element_wise("[", joined, "]", "")
