"""Spills round-trip batches, in memory or on disk, and clean up (logpipe.io.spill)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.io.spill import SpillDir, SpillReader, SpillWriter

SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.string())])


def _fill(writer: SpillWriter) -> None:
    for i in range(3):
        writer.write(pa.record_batch([pa.array([i, i]), pa.array(["x", None])], schema=SCHEMA))
    writer.close()


@pytest.mark.parametrize("memory_bytes", [0, 1 << 20])
def test_spill_round_trip_and_cleanup(tmp_path: Path, memory_bytes: int) -> None:
    with SpillDir(tmp_path) as spill:
        assert spill.path.parent == tmp_path and spill.path.name.startswith(".")
        writer = SpillWriter(spill.file(0), SCHEMA, memory_bytes=memory_bytes)
        _fill(writer)
        assert writer.rows == 6
        assert [b.column("a").to_pylist() for b in writer.reader()] == [[0, 0], [1, 1], [2, 2]]
        # small spills stay in memory; past the bound they are on disk
        assert spill.file(0).exists() == (memory_bytes == 0)
        if memory_bytes == 0:
            assert len(list(SpillReader(spill.file(0)))) == 3
    assert list(tmp_path.iterdir()) == []
