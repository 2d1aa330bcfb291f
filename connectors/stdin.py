"""Standard input as a pipeline source: ``some-app | logpipe serve --config with-stdin.toml``.

Why a reader thread: a :class:`~logpipe.pipeline.api.Source` must return from ``poll``
within its timeout, and a read from a pipe blocks until a line (or the end) comes. The
thread reads lines into a bounded queue (so a fast writer is held back by the pipeline's
own backpressure), and ``poll`` takes what is there.

Each line is one entry; its timestamp is detected in the text (``logpipe.timestamps``) and
otherwise taken from the line before it, or the time it arrived. stdin has no positions to
resume from, so nothing is checkpointed: what was read before a crash is gone from the pipe
anyway. A line longer than ``max_line_bytes`` is kept, cut, and counted as truncated.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.labels import format_labels
from logpipe.pipeline.api import AckToken, Chunk, DrainFn, Drops, ResumeFn
from logpipe.records import raw_batch
from logpipe.timestamps import detect_timestamps, fill_forward

__all__ = ["StdinSource", "StdinSourceConfig"]

_EOF = object()


@dataclass(frozen=True)
class StdinSourceConfig:
    name: str = "stdin"
    labels: dict[str, str] = field(default_factory=lambda: {"source": "stdin"})
    max_line_bytes: int = 1 << 20
    max_chunk_lines: int = 10_000
    queue_lines: int = 100_000


class StdinSource:
    """A :class:`~logpipe.pipeline.api.Source` over a byte stream (``sys.stdin`` by default)."""

    def __init__(self, config: StdinSourceConfig, stream: BinaryIO | None = None) -> None:
        self.config = config
        self.name = config.name
        self._stream = stream
        self._lines: queue.Queue[object] = queue.Queue(maxsize=config.queue_lines)
        self._reader: threading.Thread | None = None
        self._offset = 0
        self._last_ts: int | None = None
        self.finished = False

    # -- Source protocol ----------------------------------------------------------------

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        del drain, resume  # no rebalances, no stored positions
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True,
                                        name=f"{self.name}-reader")  # fmt: skip
        self._reader.start()

    def _read(self, stream: BinaryIO) -> None:
        for raw in stream:
            self._lines.put(raw)
        self._lines.put(_EOF)

    def poll(self, timeout_s: float) -> list[Chunk]:
        texts: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(texts) < self.config.max_chunk_lines and not self.finished:
            try:
                wait = max(0.0, deadline - time.monotonic()) if not texts else 0.0
                item = self._lines.get(timeout=wait) if wait else self._lines.get_nowait()
            except queue.Empty:
                break
            if item is _EOF:
                self.finished = True
                break
            assert isinstance(item, bytes)
            texts.append(item)
        if not texts:
            if self.finished:
                time.sleep(min(timeout_s, 0.05))
            return []
        return [self._chunk(texts)]

    def ack(self, tokens: Sequence[AckToken]) -> None:
        del tokens  # nothing to resume from

    def commit(self, force: bool = False) -> None:
        del force

    def close(self) -> None:
        return None

    def lag(self) -> dict[tuple[str, int], int]:
        return {(self.name, 0): self._lines.qsize()}

    # -- batches ------------------------------------------------------------------------

    def _chunk(self, raws: list[bytes]) -> Chunk:
        limit = self.config.max_line_bytes
        lines = [r.rstrip(b"\n").removesuffix(b"\r") for r in raws]
        truncated = sum(len(x) > limit for x in lines)
        lines = [x[:limit] for x in lines]
        n = len(lines)
        line_arr = pa.array(lines, pa.binary())
        default = self._last_ts if self._last_ts is not None else time.time_ns()
        ts = fill_forward(detect_timestamps(line_arr), default)
        self._last_ts = ts[-1].as_py()
        first = self._offset
        offsets = np.arange(first, first + n, dtype=np.int64)
        self._offset += n
        batch = raw_batch(line_arr, source="stdin", offsets=offsets,
                          labels=format_labels(self.config.labels), ts=ts,
                          first_lineno=first + 1)  # fmt: skip
        return Chunk(
            source=self.name,
            key=(self.name, 0),
            batch=batch,
            first=first,
            last=first + n - 1,
            token=None,
            idempotent=False,
            drops=Drops(),
            received_ns=time.monotonic_ns(),
            bytes_in=int(pc.sum(pc.binary_length(line_arr)).as_py() or 0),
            truncated=truncated,
        )
