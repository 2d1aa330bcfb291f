"""Our structured CSV lines up with Loghub's own files, column for column (needs shared data).

For every Loghub-2k system, ``logpipe parse`` with the system's format must reproduce the
ground truth's LineId, header fields and Content exactly, read back with the csv module, and
in the same column order. Templates are not compared here (that is the evaluation's job).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from logpipe.cli import main
from tests import fakes

csv.field_size_limit(1 << 26)

# Loghub's files went through pandas, which turned these field values into NaN and wrote
# them back as empty fields ("NULL" in BGL, for example), and numeric-looking columns into
# numbers ("081109" became 81109 in HDFS). We keep the text as it was. Loghub's loader also
# strips each whole line before matching, so its Content loses trailing blanks; whether to
# do the same is the framer's business, not the CSV writer's.
PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"}
PANDAS_NA |= {"1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _same(ours: list[str], truth: list[str]) -> bool:
    return len(ours) == len(truth) and all(
        a == b or (b == "" and a in PANDAS_NA) or _same_number(a, b) or a.strip() == b
        for a, b in zip(ours, truth, strict=True)
    )


def _systems(data: Path) -> list[tuple[str, str]]:
    formats = json.loads((data / "loghub-2k" / "formats.json").read_text())
    return sorted(formats.items())


@pytest.mark.data
def test_header_fields_and_content_match_loghub(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes.install(monkeypatch)
    for system, fmt in _systems(shared_data):
        folder = shared_data / "loghub-2k" / system
        log = folder / f"{system}_2k.log"
        out = tmp_path / system
        code = main(["parse", str(log), "--log-format", fmt, "--out", str(out), "--json"])
        capsys.readouterr()
        assert code == 0, system
        with (folder / f"{system}_2k.log_structured_corrected.csv").open(newline="") as fh:
            truth = list(csv.reader(fh))
        with (out / f"{system}_2k.log_structured.csv").open(newline="") as fh:
            ours = list(csv.reader(fh))
        width = truth[0].index("Content") + 1
        assert ours[0][:width] == truth[0][:width], system
        assert ours[0][width:] == ["EventId", "EventTemplate", "ParameterList"]
        assert len(ours) == len(truth), system
        mismatched = [
            i
            for i, (a, b) in enumerate(zip(ours, truth, strict=True))
            if not _same(a[:width], b[:width])
        ]
        assert not mismatched, (system, ours[mismatched[0]][:width], truth[mismatched[0]][:width])
