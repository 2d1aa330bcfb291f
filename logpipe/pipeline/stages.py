"""Small stages every pipeline may want: line size limits and timestamps from the text.

Both are vectorised (Arrow kernels) and keep no state beyond the last timestamp seen, so
they obey the stage contract in :mod:`logpipe.pipeline.api`: bounded state, per-line
problems become counted drops or data, never exceptions.
"""

from __future__ import annotations

import time
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.timestamps import detect_timestamps, fill_forward

__all__ = ["DetectTimestamps", "LineLimit"]


class LineLimit:
    """Lines over ``max_bytes`` are cut to it (``truncate``, Loki's
    ``max_line_size_truncate``) or dropped with reason ``line_too_long``."""

    def __init__(self, max_bytes: int, action: Literal["truncate", "drop"] = "truncate") -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.action = action
        self._drops: dict[str, int] = {}
        self.truncated = 0

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        line = batch.column("line")
        long = pc.greater(pc.binary_length(line), self.max_bytes)
        count = pc.sum(long).as_py() or 0
        if not count:
            return batch
        if self.action == "drop":
            self._drops["line_too_long"] = self._drops.get("line_too_long", 0) + count
            return batch.filter(pc.invert(long))
        self.truncated += count
        cut = pc.binary_slice(line, 0, self.max_bytes)
        return batch.set_column(batch.schema.get_field_index("line"), "line", cut)

    def take_drops(self) -> dict[str, int]:
        out, self._drops = self._drops, {}
        return out

    def flush(self) -> None:
        """Stateless."""

    def close(self) -> None:
        """Stateless."""


class DetectTimestamps:
    """Fills null ``ts`` from a timestamp found at the start of the line (layout detected
    per batch); lines without one (stack-trace continuations) take the time of the line
    before, the first ones the last time of the previous batch or the wall clock. Rows
    that already have a time keep it."""

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = tz
        self._last_ns: int | None = None

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ts = batch.column("ts")
        if batch.num_rows == 0 or ts.null_count == 0:
            return batch
        found = detect_timestamps(batch.column("line"), tz=self.tz)
        ints = pc.coalesce(ts.cast(pa.int64()), found)
        default = self._last_ns if self._last_ns is not None else time.time_ns()
        filled = fill_forward(ints, default)
        self._last_ns = filled[-1].as_py()
        typed = filled.cast(pa.timestamp("ns", tz="UTC"))
        return batch.set_column(batch.schema.get_field_index("ts"), "ts", typed)

    def flush(self) -> None:
        """Nothing held: the last time only seeds the next batch."""

    def close(self) -> None:
        """Nothing to release."""
