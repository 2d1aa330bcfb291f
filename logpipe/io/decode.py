"""Decoding raw line bytes into the ``content`` string column.

Why: the template miner and the header regexes work on text, but logs are bytes and some of
them are not UTF-8 (binary garbage, Latin-1 fragments). The raw ``line`` column keeps the
exact bytes; ``content`` is always valid UTF-8, with U+FFFD where bytes could not be decoded
and the line flagged ``invalid_utf8``.

Nearly every batch is valid UTF-8, so the fast path is one Arrow cast (which validates in
C++). Only a batch that fails the cast is decoded line by line in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Decoded", "decode_lines"]


@dataclass(frozen=True)
class Decoded:
    """``content``: string array; ``invalid_utf8``: bool array, or None when all were valid."""

    content: pa.Array
    invalid_utf8: pa.Array | None


def decode_lines(lines: pa.Array) -> Decoded:
    """Decode a ``binary`` array of raw lines; strip one trailing ``\\r`` (CRLF files).

    NUL bytes and other control characters are kept: they are part of the message and a
    later stage may need them; only the line terminator is removed.
    """
    invalid: pa.Array | None = None
    try:
        content = lines.cast(pa.string())
    except pa.ArrowInvalid:
        content, invalid = _decode_slow(lines)
    has_cr = pc.ends_with(content, "\r")
    if pc.any(has_cr).as_py():
        content = pc.if_else(has_cr, pc.utf8_slice_codeunits(content, 0, -1), content)
    return Decoded(content, invalid)


def _decode_slow(lines: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Per-line decode of a batch that holds at least one invalid line."""
    texts: list[str] = []
    bad: list[bool] = []
    for raw in lines.to_pylist():
        try:
            texts.append(raw.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(raw.decode("utf-8", errors="replace"))
            bad.append(True)
    return pa.array(texts, pa.string()), pa.array(bad, pa.bool_())
