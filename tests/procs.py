"""Run a command as a child process and read its own peak memory (for the memory tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import REPO

# Linux carries a process's memory high-water mark into a forked child and keeps it across
# exec, so a child forked straight from a big pytest process (one that loaded a model) reports
# the parent's peak. A small stdlib-only launcher forks the command instead and reports the
# command's own peak (wait4's ru_maxrss) in a file.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(proc.pid, 0)\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    fh.write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_kib(args: Sequence[str]) -> int:
    """Run ``args`` (cwd = repo, PYTHONPATH = repo) and return its own peak RSS in KiB."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "maxrss"
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        return int(report.read_text())
