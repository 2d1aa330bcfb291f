"""PLACEHOLDER: the archive container (file layout, checksums, damage handling).

The interface below is final; the implementation replaces the bodies.

An archive is a file of independent *segments*. Each segment carries a small JSON header
(``dict``) and named binary *streams* (``bytes``); the container compresses each stream with
zstd, checksums it, and can find every intact segment of a damaged file (salvage).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logpipe.errors import InputError

__all__ = ["ArchiveError", "ArchiveReader", "ArchiveWriter", "Segment", "SegmentInfo"]


class ArchiveError(InputError):
    """A damaged, truncated or foreign archive; the message names the segment and offset."""


@dataclass(frozen=True)
class SegmentInfo:
    """Where a segment lies and what its header says (no stream is decompressed)."""

    index: int
    offset: int  # byte offset of the segment in the archive file
    length: int  # bytes on disk
    header: dict[str, Any]
    stream_sizes: dict[str, tuple[int, int]]  # name -> (compressed, raw) bytes


@dataclass(frozen=True)
class Segment:
    info: SegmentInfo
    streams: dict[str, bytes]  # decompressed, checksum verified


class ArchiveWriter:
    """Writes segments to ``path`` via a temp file renamed on :meth:`close`."""

    def __init__(self, path: Path, meta: Mapping[str, Any], level: int = 19) -> None:
        raise NotImplementedError

    def add_segment(self, header: Mapping[str, Any], streams: Mapping[str, bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class ArchiveReader:
    """Reads an archive; ``salvage=True`` skips damaged segments instead of failing."""

    def __init__(self, path: Path, *, salvage: bool = False) -> None:
        raise NotImplementedError

    @property
    def meta(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def segments(self) -> list[SegmentInfo]:
        raise NotImplementedError

    def read(self, index: int, names: list[str] | None = None) -> Segment:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Segment]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
