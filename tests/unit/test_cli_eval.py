"""``logpipe eval`` through ``logpipe.cli.main`` on small CSVs written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from logpipe.cli import main

HEADER = ["LineId", "Date", "Content", "EventId", "EventTemplate"]


def _write(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header or HEADER)
        writer.writerows(rows)
    return path


def _rows(templates: list[str], ids: list[int] | None = None) -> list[list[str]]:
    ids = ids or list(range(1, len(templates) + 1))
    return [[str(i), "d", f"msg {i}", "E", t] for i, t in zip(ids, templates, strict=True)]


TRUTH = ["send <*>"] * 4 + ["recv <*>"] * 2
SPLIT = ["send <*>"] * 2 + ["send <*> now"] * 2 + ["recv <*>"] * 2


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    assert isinstance(result, dict)
    return result


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    parsed = _write(tmp_path / "parsed.csv", _rows(SPLIT))
    assert main(["eval", str(truth), str(parsed), "--json"]) == 0
    result = _json_out(capsys)
    # Same case as test_evaluation.test_one_group_split_in_two.
    assert result["ga"] == pytest.approx(2 / 6)
    assert result["pa"] == pytest.approx(4 / 6)
    assert result["fga"] == pytest.approx(0.4)
    assert result["fta"] == pytest.approx(0.8)
    assert result["n_lines"] == 6
    assert result["aligned_by"] == "LineId"
    assert result["truth"] == str(truth)


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    assert main(["eval", str(truth), str(truth)]) == 0
    out = capsys.readouterr().out
    for name in ("GA", "PA", "FGA", "FTA", "truth groups"):
        assert name in out
    assert "1.0000" in out


def test_aligns_by_line_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The parsed file lists the same lines in reverse order: LineId alignment makes it perfect.
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    rows = _rows(TRUTH)[::-1]
    parsed = _write(tmp_path / "parsed.csv", rows)
    assert main(["eval", str(truth), str(parsed), "--json"]) == 0
    result = _json_out(capsys)
    assert (result["ga"], result["pa"], result["aligned_by"]) == (1.0, 1.0, "LineId")


def test_aligns_by_row_without_line_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    parsed = _write(tmp_path / "parsed.csv", [[t] for t in SPLIT], header=["EventTemplate"])
    assert main(["eval", str(truth), str(parsed), "--json"]) == 0
    result = _json_out(capsys)
    assert result["aligned_by"] == "row"
    assert result["pa"] == pytest.approx(4 / 6)


def test_empty_truth_field_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(["a", "", "b"]))
    parsed = _write(tmp_path / "parsed.csv", _rows(["a", "a", "c"]))
    assert main(["eval", str(truth), str(parsed), "--json"]) == 0
    result = _json_out(capsys)
    # Same case as test_evaluation.test_missing_truth_is_dropped_except_for_pa.
    assert (result["n_scored_lines"], result["ga"]) == (2, 1.0)
    assert result["pa"] == pytest.approx(1 / 3)


def test_line_count_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    parsed = _write(tmp_path / "parsed.csv", _rows(SPLIT[:5]))
    assert main(["eval", str(truth), str(parsed)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "logpipe: error:" in err
    assert str(truth) in err and str(parsed) in err
    assert "6 lines" in err and "has 5" in err


def test_line_ids_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    parsed = _write(tmp_path / "parsed.csv", _rows(TRUTH, ids=[1, 2, 3, 4, 5, 99]))
    assert main(["eval", str(truth), str(parsed)]) == 1
    assert "LineId 6" in capsys.readouterr().err


def test_missing_template_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    parsed = _write(tmp_path / "parsed.csv", [["1", "x"]], header=["LineId", "Content"])
    assert main(["eval", str(truth), str(parsed)]) == 1
    assert "no EventTemplate column" in capsys.readouterr().err


def test_empty_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", [])
    assert main(["eval", str(truth), str(truth)]) == 1
    assert "no lines" in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _write(tmp_path / "truth.csv", _rows(TRUTH))
    assert main(["eval", str(truth), str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "only-one.csv"]) == 2
    assert "Missing argument" in capsys.readouterr().err
