"""Golden LogQL scripts: every function, operator and stage, evaluated over a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.logqltest import run_script

SCRIPTS = sorted((REPO / "tests" / "golden" / "logql").glob("*.logqltest"))


def test_there_are_golden_scripts() -> None:
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_golden_script(script: Path, tmp_path: Path) -> None:
    assert run_script(script, tmp_path) > 0
