"""The shipped sample log is what its generator writes, and parses line for line."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from logpipe.cli import main
from tests import fakes
from tests.conftest import REPO

SAMPLE = REPO / "samples" / "shop" / "webshop.log"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_webshop", SAMPLE.parent.parent / "generate_webshop.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _makefile_format() -> str:
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^SAMPLE_FORMAT := (.*)$", text, re.MULTILINE)
    assert match, "Makefile defines SAMPLE_FORMAT for make run"
    return match.group(1)


def test_sample_is_up_to_date_and_small() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == _generator().generate()
    assert SAMPLE.stat().st_size < 1_000_000


def test_sample_parses_with_the_documented_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.install(monkeypatch)
    fmt = _makefile_format()
    assert fmt in (REPO / "samples" / "README.md").read_text()
    code = main(["parse", str(SAMPLE), "--log-format", fmt, "--out", str(tmp_path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["lines"] == 4000
    tracebacks = sum(1 for line in SAMPLE.read_text().splitlines() if not line.startswith("2024-"))
    assert summary["unmatched_lines"] == tracebacks > 0
    assert (tmp_path / "webshop.log_structured.csv").exists()
