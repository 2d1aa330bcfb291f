"""Vectorised CSV/JSON/list-repr encoders agree with Python's own (logpipe.io.textenc)."""

from __future__ import annotations

import ast
import csv
import io
import json

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from logpipe.io.textenc import (
    csv_field,
    csv_rows,
    json_string,
    json_string_list,
    python_list_repr,
    rows_buffer,
)

# Any text Arrow can hold (no lone surrogates), with the troublesome characters likely.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",\"'\\\r\n\t\x00\x1f\x7f \u2028\u00a0é中")),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=12,
)


@given(st.lists(st.tuples(TEXT, st.none() | TEXT), max_size=10))
def test_csv_round_trips_through_python_csv(rows: list[tuple[str, str | None]]) -> None:
    first = pa.array([r[0] for r in rows], pa.string())
    second = pa.array([r[1] for r in rows], pa.string())
    text = rows_buffer(csv_rows([csv_field(first), csv_field(second)])).to_pybytes().decode()
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == [[a, b or ""] for a, b in rows]


def test_csv_quotes_only_what_must_be_quoted() -> None:
    values = pa.array(["plain text", "a,b", 'say "hi"', "two\nlines", "cr\r", "<*> [x]"])
    assert csv_field(values).to_pylist() == [
        "plain text",
        '"a,b"',
        '"say ""hi"""',
        '"two\nlines"',
        '"cr\r"',
        "<*> [x]",
    ]


@given(st.lists(st.none() | TEXT, max_size=10))
def test_json_strings_round_trip(values: list[str | None]) -> None:
    encoded = json_string(pa.array(values, pa.string())).to_pylist()
    assert [json.loads(e) for e in encoded] == values


@given(st.lists(st.none() | st.lists(TEXT, max_size=4), max_size=8), st.integers(0, 3))
def test_list_repr_is_python_str_of_list(params: list[list[str] | None], skip: int) -> None:
    arr = pa.array(params, pa.list_(pa.string())).slice(min(skip, len(params)))
    want = [p or [] for p in params[min(skip, len(params)) :]]
    rendered = python_list_repr(arr).to_pylist()
    assert rendered == [str(p) for p in want]
    assert [ast.literal_eval(r) for r in rendered] == want
    assert [json.loads(j) for j in json_string_list(arr).to_pylist()] == want


def test_list_repr_looks_like_loghub() -> None:
    arr = pa.array([["blk_123", "10.0.0.1"], [], ["it's"]], pa.list_(pa.string()))
    assert python_list_repr(arr).to_pylist() == ["['blk_123', '10.0.0.1']", "[]", '["it\'s"]']


def test_rows_buffer_of_a_slice() -> None:
    rows = pa.array(["a\n", "b\n", "c\n"]).slice(1, 2)
    assert rows_buffer(rows).to_pybytes() == b"b\nc\n"
    assert rows_buffer(pa.array([], pa.string())).to_pybytes() == b""
