"""Spill files round-trip batches and clean up after themselves (logpipe.io.spill)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from logpipe.io.spill import SpillDir, SpillReader, SpillWriter


def test_spill_round_trip_and_cleanup(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    with SpillDir(tmp_path) as spill:
        assert spill.path.parent == tmp_path and spill.path.name.startswith(".")
        writer = SpillWriter(spill.file(0), schema)
        for i in range(3):
            writer.write(pa.record_batch([pa.array([i, i]), pa.array(["x", None])], schema=schema))
        writer.close()
        assert writer.rows == 6
        batches = list(SpillReader(spill.file(0)))
        assert [b.column("a").to_pylist() for b in batches] == [[0, 0], [1, 1], [2, 2]]
    assert list(tmp_path.iterdir()) == []
