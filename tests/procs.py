"""Run a command as a child process and read its own peak memory (for the memory tests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from tests.conftest import REPO


def peak_rss_kib(args: Sequence[str]) -> int:
    """Run ``args`` (cwd = repo, PYTHONPATH = repo) and return its peak RSS in KiB.

    ``wait4`` gives the child's own maximum, not the largest of all children so far.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        list(args), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == 0, err
    return int(usage.ru_maxrss)
