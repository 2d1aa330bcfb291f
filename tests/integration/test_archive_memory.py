"""Peak memory of ``logpipe compress``/``decompress`` is bounded by the segment size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.procs import peak_rss_kib


def _generate(path: Path, lines: int) -> None:
    block = "".join(
        f"2024-03-05 10:{(i // 60) % 60:02d}:{i % 60:02d},{i % 1000:03d} INFO dfs.DataNode: "
        f"Served block blk_{i * 7919} to /10.0.{i % 7}.{i % 13} in {i % 97} ms\n"
        for i in range(10_000)
    ).encode()
    with path.open("wb") as fh:
        for _ in range(lines // 10_000):
            fh.write(block)


def _peak_rss_kib(*args: str) -> int:
    return peak_rss_kib([sys.executable, "-m", "logpipe.cli", *args])


@pytest.mark.slow
def test_archive_memory_does_not_grow_with_input(tmp_path: Path) -> None:
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    _generate(small, 100_000)
    _generate(big, 500_000)
    rss = {}
    for path in (small, big):
        archive = path.with_suffix(".lpz")
        back = path.with_suffix(".back")
        compress = _peak_rss_kib("compress", str(path), "-o", str(archive), "--segment-mb", "2",
                                 "--no-progress", "--level", "3")  # fmt: skip
        decompress = _peak_rss_kib("decompress", str(archive), "-o", str(back))
        assert back.read_bytes() == path.read_bytes()
        rss[path.name] = (compress, decompress)
    # 5x the input, nearly the same peak: segments are streamed, never the whole input
    for before, after in zip(rss["small.log"], rss["big.log"], strict=True):
        assert after < before * 1.3 + 20_000, rss
