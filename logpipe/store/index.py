"""What a segment's lines *could* contain, from the manifest alone (the CLP idea).

A line filter (``|= "needle"``) should open only segments that may hold the needle. A
segment's lines are its templates' literal pieces with values in between (and a few
verbatim lines), so an occurrence of the needle in a line either

* touches a literal piece (overlaps it, contains it, or lies inside it), or spans two
  adjacent values: :func:`~logpipe.archive.segment.literal_may_match` answers that from the
  template pieces, which the manifest keeps; or
* lies wholly inside one value. An integer value is all digits, so only an all-digit needle
  can lie in one (``literal_may_match`` checks that too); a string value or a verbatim line
  is covered by a **trigram filter**: a one-hash Bloom filter over every 3-byte window of the
  segment's string values and verbatim lines. If any of the needle's trigrams is missing,
  the needle is in none of them.

Why trigrams and not a token set: a LogQL ``|=`` needle is a substring, not a token
(``|= "blk_-16"`` must find ``blk_-1608999687919862906``), and only n-grams answer
substring questions without false negatives. Why a Bloom filter and not the exact set: the
exact set of a segment of a few megabytes is tens of thousands of trigrams (3-4 bytes
each in JSON at best), the bitmap is about one byte per trigram (capped at 8 KiB) with a
false-positive rate per trigram of ~12%, so a needle of 6 bytes (4 trigrams) passes a
segment that lacks it about 2 times in 10,000. False positives cost an unneeded open;
false negatives cannot happen. Needles under 3 bytes always "may" match.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from logpipe.archive.segment import literal_may_match
from logpipe.arrowutil import from_numpy

__all__ = ["ContentIndex", "build_index", "may_contain", "may_contain_all"]

_MIN_BITS = 1 << 10
_MAX_BITS = 1 << 16
_BITS_PER_TRIGRAM = 8
_GOLDEN = np.uint64(0x9E3779B1)


@dataclass(frozen=True)
class ContentIndex:
    """Per-segment filter data kept in the manifest.

    ``templates``: each template's literal pieces and whether it has an integer column;
    ``trigrams``: the Bloom filter's bitmap (its size in bits is ``8 * len(trigrams)``, a
    power of two; empty when the segment has no string values or verbatim lines).
    """

    templates: tuple[tuple[tuple[str, ...], bool], ...]
    trigrams: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "templates": [{"pieces": list(p), "int": has_int} for p, has_int in self.templates],
            "trigrams": base64.b64encode(self.trigrams).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: object) -> ContentIndex:
        """Validated inverse of :meth:`to_json` (ValueError when malformed)."""
        if not isinstance(obj, dict):
            raise ValueError("content index is not an object")
        rows = obj.get("templates")
        bitmap = obj.get("trigrams")
        if not isinstance(rows, list) or not isinstance(bitmap, str):
            raise ValueError("content index lacks templates or trigrams")
        templates = []
        for row in rows:
            pieces = row.get("pieces") if isinstance(row, dict) else None
            has_int = row.get("int") if isinstance(row, dict) else None
            if (
                not isinstance(pieces, list)
                or not pieces
                or not all(isinstance(p, str) for p in pieces)
                or not isinstance(has_int, bool)
            ):
                raise ValueError("content index has a malformed template")
            templates.append((_pieces(pieces), has_int))
        try:
            bits = base64.b64decode(bitmap, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content index trigrams are not base64") from None
        if bits and (len(bits) & (len(bits) - 1) or len(bits) * 8 < _MIN_BITS):
            raise ValueError("content index trigram filter has a bad size")
        return cls(tuple(templates), bits)


def _pieces(pieces: list[str]) -> tuple[str, ...]:
    """A template's literal pieces, interned: a stream's segments share most templates,
    and the manifest holds every segment's index in memory, so each piece is stored once
    (a third of an entry's memory otherwise; CPython frees an interned string when its
    last user goes)."""
    return tuple(sys.intern(p) for p in pieces)


def _trigram_bits(data: np.ndarray, nbits: int) -> np.ndarray:
    """Bit index of each 3-byte window of ``data`` (uint8) in a filter of ``nbits``."""
    codes = (
        (data[:-2].astype(np.uint64) << np.uint64(16))
        | (data[1:-1].astype(np.uint64) << np.uint64(8))
        | data[2:].astype(np.uint64)
    )
    shift = np.uint64(32 - (nbits.bit_length() - 1))
    hashed: np.ndarray = ((codes * _GOLDEN) & np.uint64(0xFFFFFFFF)) >> shift
    return hashed


def build_index(header: dict[str, Any], streams: dict[str, bytes]) -> ContentIndex:
    """The filter data of an encoded segment (its header and uncompressed streams)."""
    entries = json.loads(streams["dict"])["templates"]
    templates = tuple(
        (_pieces(e["pieces"]), any(kind != "str" for kind in e["types"])) for e in entries
    )
    data = np.frombuffer(streams["strs"] + streams["raw"], dtype=np.uint8)
    if len(data) < 3:
        return ContentIndex(templates, b"")
    # windows that cross a value's terminating newline are not in any value: leave them out
    newline = data == 10
    inside = ~(newline[:-2] | newline[1:-1] | newline[2:])
    codes = ((data[:-2].astype(np.uint32) << 16) | (data[1:-1].astype(np.uint32) << 8) | data[2:])[
        inside
    ]
    distinct = len(pc.unique(from_numpy(codes)))
    nbits = _MIN_BITS
    while nbits < _BITS_PER_TRIGRAM * distinct and nbits < _MAX_BITS:
        nbits *= 2
    bitmap = np.zeros(nbits, dtype=bool)
    bitmap[_trigram_bits(data, nbits)[inside]] = True
    return ContentIndex(templates, np.packbits(bitmap, bitorder="little").tobytes())


def _needle_text(needle: bytes) -> str:
    return needle.decode("utf-8", "surrogateescape")


def may_contain(index: ContentIndex, needle: bytes | str) -> bool:
    """False only if no line of the segment can contain ``needle`` (never a false negative)."""
    raw = needle.encode("utf-8", "surrogateescape") if isinstance(needle, str) else needle
    if len(raw) < 3 or b"\n" in raw:
        return len(raw) < 3  # a stored line never holds a newline
    text = _needle_text(raw)
    for pieces, has_int in index.templates:
        if literal_may_match(text, {"pieces": list(pieces), "types": ["int"] if has_int else []}):
            return True
    if not index.trigrams:
        return False
    bitmap = np.unpackbits(np.frombuffer(index.trigrams, dtype=np.uint8), bitorder="little")
    wanted = _trigram_bits(np.frombuffer(raw, dtype=np.uint8), len(bitmap))
    return bool(bitmap[wanted].all())


def may_contain_all(index: ContentIndex, needles: Sequence[bytes | str]) -> bool:
    """Whether the segment may hold lines with every needle (ANDed line filters)."""
    return all(may_contain(index, needle) for needle in needles)
