"""The store's file I/O over any ``pyarrow.fs.FileSystem``: the only module that touches it.

Paths are ``/``-separated and relative to the store root. On the local file system
(``filesystem=None`` or a plain ``LocalFileSystem``) writes go through the OS so they can be
made durable: temp file in the target's directory, ``fsync``, ``rename``, ``fsync`` of the
directory. Any other file system (``SubTreeFileSystem``, S3, GCS, HDFS) gets the same
interface with what it offers: the file is built locally, uploaded with
``open_output_stream`` under a temp name and moved into place (object stores publish an
object only when its upload completes, so a reader never sees half a file); reads use
``open_input_file``, a seekable file, so opening a segment reads its header and only the
streams asked for.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

__all__ = ["StoreFiles"]

_COPY_CHUNK = 1 << 20


class StoreFiles:
    """Files under ``root`` of ``filesystem`` (local when None)."""

    def __init__(self, root: str | os.PathLike[str], filesystem: pafs.FileSystem | None) -> None:
        if filesystem is None or type(filesystem) is pafs.LocalFileSystem:
            self.fs: pafs.FileSystem = filesystem or pafs.LocalFileSystem()
            self.local_root: Path | None = Path(root).absolute()
            self.root = self.local_root.as_posix()
        else:
            self.fs = filesystem
            self.local_root = None
            self.root = str(root).rstrip("/")

    def full(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def local(self, rel: str) -> Path | None:
        """The OS path of ``rel`` on the local file system, else None."""
        return None if self.local_root is None else self.local_root / rel

    # -- reading ----------------------------------------------------------------------

    def read_bytes(self, rel: str) -> bytes | None:
        """The file's contents, or None when it does not exist."""
        try:
            with self.fs.open_input_stream(self.full(rel)) as f:
                data: bytes = f.read()
        except FileNotFoundError:
            return None
        return data

    def stat(self, rel: str) -> tuple[int, int] | None:
        """``(size, mtime_ns)`` of a file (mtime 0 where the file system has none), or None."""
        info = self.fs.get_file_info(self.full(rel))
        if info.type != pafs.FileType.File:
            return None
        return int(info.size or 0), int(info.mtime_ns or 0)

    def open_input(self, rel: str) -> BinaryIO:
        """A seekable binary file (the caller closes it); FileNotFoundError when missing."""
        local = self.local(rel)
        if local is not None:
            return open(local, "rb")  # the caller owns (and closes) it
        f: BinaryIO = self.fs.open_input_file(self.full(rel))
        return f

    def list_files(self, rel_dir: str) -> Iterator[tuple[str, int]]:
        """Every file under ``rel_dir`` (recursively) as ``(rel path, size)``."""
        selector = pafs.FileSelector(self.full(rel_dir), recursive=True, allow_not_found=True)
        prefix = len(self.full(""))
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File:
                yield info.path[prefix:], int(info.size or 0)

    def list_dirs(self, rel_dir: str) -> list[str]:
        """Names of the directories directly inside ``rel_dir``."""
        selector = pafs.FileSelector(self.full(rel_dir), allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory
        )

    # -- writing ----------------------------------------------------------------------

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data``: readers see the old or the new file, never a mix."""
        local = self.local(rel)
        if local is None:
            self._upload(rel, lambda out: out.write(data))
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=local.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, local)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(local.parent)

    def put_built(self, rel: str, build: Callable[[Path], None]) -> int:
        """Create ``rel`` by calling ``build(path)`` with a local path; its size in bytes.

        ``build`` must itself write atomically (``ArchiveWriter`` does: temp, fsync, rename,
        fsync of the directory); on the local file system it writes straight into place,
        elsewhere into a temp directory whose file is then uploaded.
        """
        local = self.local(rel)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            build(local)
            return local.stat().st_size
        with tempfile.TemporaryDirectory(prefix="logpipe-store-") as tmp_dir:
            staged = Path(tmp_dir) / "segment.lpz"
            build(staged)
            with open(staged, "rb") as src:
                self._upload(rel, lambda out: _copy(src, out))
            return staged.stat().st_size

    def _upload(self, rel: str, write: Callable[[pa.NativeFile], object]) -> None:
        parent = rel.rpartition("/")[0]
        if parent:
            self.fs.create_dir(self.full(parent), recursive=True)
        tmp = f"{rel}.{os.urandom(6).hex()}.tmp"
        try:
            with self.fs.open_output_stream(self.full(tmp)) as out:
                write(out)
            self.fs.move(self.full(tmp), self.full(rel))
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(self.full(tmp))
            raise

    def delete(self, rel: str) -> bool:
        """Remove a file; False when it was already gone."""
        try:
            self.fs.delete_file(self.full(rel))
        except FileNotFoundError:
            return False
        return True

    def remove_empty_dir(self, rel_dir: str) -> None:
        """Remove ``rel_dir`` if it holds nothing (stream directories after retention)."""
        selector = pafs.FileSelector(self.full(rel_dir), allow_not_found=True)
        if not self.fs.get_file_info(selector):
            with contextlib.suppress(OSError):
                self.fs.delete_dir(self.full(rel_dir))


def _copy(src: BinaryIO, out: pa.NativeFile) -> None:
    while chunk := src.read(_COPY_CHUNK):
        out.write(chunk)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (see :func:`logpipe.archive.container._fsync_dir`)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
