"""Result writers: Loghub-style CSV, JSON lines, Parquet (logpipe.io.outputs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logpipe.io.outputs import (
    OutputFormat,
    StructuredRows,
    TemplateRow,
    open_structured_writer,
    write_templates,
)


def _rows(start: int) -> StructuredRows:
    return StructuredRows(
        line_id=pa.array([start, start + 1], pa.int64()),
        fields={
            "Date": pa.array(["081109", None], pa.string()),
            "Level": pa.array(["INFO", None], pa.string()),
        },
        content=pa.array(['Served block, "blk_1"', "garbage line"], pa.string()),
        event_id=pa.array(["E3", "E7"], pa.string()),
        template=pa.array(['Served block, "<*>"', "garbage line"], pa.string()),
        params=pa.array([["blk_1"], []], pa.list_(pa.string())),
        error=pa.array([None, "no_format_match"], pa.string()),
    )


def _write_two_batches(tmp_path: Path, fmt: OutputFormat) -> Path:
    writer = open_structured_writer(fmt, tmp_path, "app.log", ["Date", "Level"])
    writer.write(_rows(1))
    writer.write(_rows(3))
    assert not writer.path.exists(), "published only when complete"
    writer.close()
    return writer.path


def test_csv_matches_loghub_layout(tmp_path: Path) -> None:
    path = _write_two_batches(tmp_path, OutputFormat.CSV)
    assert path.name == "app.log_structured.csv"
    text = path.read_text(encoding="utf-8")
    header = "LineId,Date,Level,Content,EventId,EventTemplate,ParameterList"
    assert text.splitlines()[0] == header
    # every string value is quoted (RFC 4180); inner quotes are doubled
    assert text.splitlines()[1] == (
        '1,"081109","INFO","Served block, ""blk_1""","E3","Served block, ""<*>""","[\'blk_1\']"'
    )
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["LineId"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[1]["Date"] == "" and rows[1]["Content"] == "garbage line"
    assert rows[1]["ParameterList"] == "[]"
    assert list(tmp_path.iterdir()) == [path]


def test_jsonl_has_typed_values_and_error(tmp_path: Path) -> None:
    path = _write_two_batches(tmp_path, OutputFormat.JSONL)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4
    assert records[0] == {
        "LineId": 1,
        "Date": "081109",
        "Level": "INFO",
        "Content": 'Served block, "blk_1"',
        "EventId": "E3",
        "EventTemplate": 'Served block, "<*>"',
        "ParameterList": ["blk_1"],
        "Error": None,
    }
    assert records[1]["Date"] is None and records[1]["Error"] == "no_format_match"


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = _write_two_batches(tmp_path, OutputFormat.PARQUET)
    table = pq.read_table(path)
    assert table.column_names == [
        "LineId",
        "Date",
        "Level",
        "Content",
        "EventId",
        "EventTemplate",
        "ParameterList",
        "Error",
    ]
    assert table.column("LineId").to_pylist() == [1, 2, 3, 4]
    assert table.column("ParameterList").to_pylist()[0] == ["blk_1"]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_templates_file(tmp_path: Path, fmt: OutputFormat) -> None:
    rows = [TemplateRow("E2", "a, <*>", 5), TemplateRow("E1", "b", 1)]
    path = write_templates(fmt, tmp_path, "x.log", rows)
    assert path.name == f"x.log_templates.{fmt.value}"
    if fmt is OutputFormat.CSV:
        assert path.read_text() == 'EventId,EventTemplate,Occurrences\nE2,"a, <*>",5\nE1,b,1\n'
    elif fmt is OutputFormat.JSONL:
        got = [json.loads(line) for line in path.read_text().splitlines()]
        assert got[0] == {"EventId": "E2", "EventTemplate": "a, <*>", "Occurrences": 5}
    else:
        assert pq.read_table(path).column("Occurrences").to_pylist() == [5, 1]


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = open_structured_writer(OutputFormat.CSV, tmp_path, "a", [])
    writer.abort()
    assert list(tmp_path.iterdir()) == []
