"""tests.procs.peak_rss_kib measures the child alone, whatever the size of the test process."""

from __future__ import annotations

import sys

from tests.procs import peak_rss_kib


def test_a_small_child_of_a_big_parent_reports_its_own_peak() -> None:
    # Linux carries the parent's high-water mark into a forked child across exec, so a
    # pytest process that had loaded a language model made every child look 2.6 GB big.
    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    rss = peak_rss_kib([sys.executable, "-c", "pass"])
    assert rss < 100 * 1024, f"{rss / 1024:.0f} MiB"
    del ballast
