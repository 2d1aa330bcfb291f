"""Peak memory of ``logpipe parse`` stays flat as the input grows (opt-in: ``-m slow``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fakes import FORMAT
from tests.procs import peak_rss_kib

# Few distinct messages, so any miner (even one that keeps every distinct line) stays small:
# what is measured is the reading, spilling and writing path.
MESSAGES = [
    f"Served block blk_{i} to /10.0.{i % 7}.{i % 13} in {i % 97} ms, status=OK" for i in range(60)
]


def _generate(path: Path, lines: int) -> None:
    block = "".join(
        f"2024-03-05 10:{(i // 60) % 60:02d}:{i % 60:02d},{i % 1000:03d} INFO dfs.DataNode: "
        f"{MESSAGES[i % len(MESSAGES)]}\n"
        for i in range(10_000)
    ).encode()
    with path.open("wb") as fh:
        for _ in range(lines // 10_000):
            fh.write(block)


def _peak_rss_kib(log: Path, out: Path) -> int:
    """Run the CLI on ``log`` and return the child's own peak RSS (KiB)."""
    args = [sys.executable, "-m", "tests.fake_cli", "parse", str(log)]
    args += ["--log-format", FORMAT, "--out", str(out), "--no-progress", "--json"]
    return peak_rss_kib(args)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_input(tmp_path: Path) -> None:
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    _generate(small, 200_000)
    _generate(big, 2_000_000)
    rss_small = _peak_rss_kib(small, tmp_path / "out-small")
    rss_big = _peak_rss_kib(big, tmp_path / "out-big")
    with (tmp_path / "out-big" / "big.log_structured.csv").open("rb") as fh:
        rows = sum(1 for _ in fh)
    assert rows == 2_000_000 + 1  # header + one row per line
    # 10x the input, (nearly) the same peak: batches are streamed, not accumulated.
    assert rss_big <= rss_small * 1.25 + 48 * 1024, (rss_small, rss_big)
    assert rss_big < 1024 * 1024, f"peak RSS {rss_big / 1024:.0f} MiB"
