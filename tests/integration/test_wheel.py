"""The built wheel installs models/ and connectors/ under the logpipe namespace only."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_puts_models_and_connectors_under_logpipe(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(out)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    wheels = list(out.glob("logpipe-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    top_level = {n.split("/")[0] for n in names if not n.startswith("logpipe-")}
    assert top_level == {"logpipe"}, top_level
    assert "logpipe/models/__init__.py" in names
    assert "logpipe/connectors/__init__.py" in names
    assert "logpipe/py.typed" in names
    assert "logpipe/logql/logql.lark" in names  # the grammar is data, not code
    # every package of the checkout ships (pyproject lists them one by one)
    for init in sorted((REPO / "logpipe").rglob("__init__.py")):
        assert init.relative_to(REPO).as_posix() in names, init

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
         str(target), str(wheels[0])],
        check=True,
        capture_output=True,
    )  # fmt: skip
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import logpipe.models, logpipe.connectors, logpipe.parsing, logpipe.cli, logpipe.logql;"
        "logpipe.logql.parse('{app=\"x\"}');"
        "print(logpipe.models.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip().startswith(str(target))
