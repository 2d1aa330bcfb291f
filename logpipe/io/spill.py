"""Spill files: phase 1 of ``logpipe parse`` parks each parsed batch on disk.

Why: a line's reported template is its cluster's *final* template, known only after the
whole input has been mined. Keeping every line in memory until then would make memory grow
with the input; instead each batch (header fields, content, cluster id, error) is appended to
an Arrow IPC stream, and phase 2 reads it back one batch at a time. IPC is the cheapest
format Arrow has (no encoding, LZ4 to halve the disk traffic), and reading it back through a
plain file (not a memory map) keeps the resident memory to one batch.

Small inputs never touch the disk: a spill stays in memory up to a bound (64 MiB of
batches) and only past it moves to a file. Spill files live in a hidden directory inside the
output directory (not ``/tmp``, which is
often RAM-backed) and are removed when the run ends, also on errors.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pyarrow as pa

__all__ = ["SpillDir", "SpillReader", "SpillWriter"]


def _codec() -> str | None:
    return "lz4" if pa.Codec.is_available("lz4") else None


class SpillWriter:
    """Keeps record batches of one schema for phase 2: in memory while small, then on disk.

    Why the memory stage: most inputs are small, and for them the file round trip is pure
    overhead; past ``memory_bytes`` everything goes to an IPC stream file at ``path`` so
    memory stays bounded whatever the input size.
    """

    def __init__(self, path: Path, schema: pa.Schema, memory_bytes: int = 64 << 20) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._memory_bytes = memory_bytes
        self._held: list[pa.RecordBatch] | None = []
        self._held_bytes = 0
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self._held is not None:
            self._held.append(batch)
            self._held_bytes += batch.nbytes
            if self._held_bytes <= self._memory_bytes:
                return
            held, self._held = self._held, None
            self._open()
            for item in held:
                self._write_file(item)
            return
        self._write_file(batch)

    def _open(self) -> None:
        self._sink = pa.OSFile(str(self.path), "wb")
        options = pa.ipc.IpcWriteOptions(compression=_codec())
        self._writer = pa.ipc.new_stream(self._sink, self.schema, options=options)

    def _write_file(self, batch: pa.RecordBatch) -> None:
        assert self._writer is not None
        self._writer.write_batch(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()

    def reader(self) -> Iterator[pa.RecordBatch]:
        """The batches written, in order (after :meth:`close`)."""
        if self._held is not None:
            yield from self._held
        else:
            yield from SpillReader(self.path)


class SpillReader:
    """Reads a spill file back, one batch at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        with pa.OSFile(str(self.path), "rb") as source:
            reader = pa.ipc.open_stream(source)
            yield from reader


class SpillDir:
    """A temporary directory for spill files, removed on exit (context manager)."""

    def __init__(self, parent: Path | None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=".logpipe-spill-", dir=parent))

    def file(self, index: int) -> Path:
        return self.path / f"input-{index:05d}.arrows"

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
