"""A minimal protobuf wire-format reader: enough to decode Loki's ``PushRequest``.

Why hand-written: Promtail, Alloy and the Loki clients push ``logproto.PushRequest`` as
protobuf; decoding three small messages does not justify a protobuf runtime and generated
code as dependencies. The reader is strict about the wire (truncation, overlong varints,
groups) and lenient about the schema (unknown fields are skipped, as protobuf requires), so
a newer client that adds fields still pushes.

Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; 3/4 (groups) are refused.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["WireError", "fields", "signed64"]

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message; ``offset`` says where."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


def _varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError("truncated varint", start)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise WireError("varint longer than 10 bytes", start)


def signed64(value: int) -> int:
    """A varint read as int64 (two's complement), as ``int64`` fields are encoded."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int | memoryview, int]]:
    """``(field number, wire type, value, offset)`` of each field in ``data[start:end]``.

    Varints come as unsigned ints, fixed-width values as unsigned ints, length-delimited
    values as memoryviews (zero-copy; decode nested messages by calling again).
    """
    view = memoryview(data)
    end = len(view) if end is None else end
    pos = start
    while pos < end:
        at = pos
        key, pos = _varint(view, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0", at)
        value: int | memoryview
        if wire == VARINT:
            value, pos = _varint(view, pos, end)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64", at)
            value, pos = int.from_bytes(view[pos : pos + 8], "little"), pos + 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32", at)
            value, pos = int.from_bytes(view[pos : pos + 4], "little"), pos + 4
        elif wire == LENGTH_DELIMITED:
            size, pos = _varint(view, pos, end)
            if pos + size > end:
                raise WireError(f"field {number} claims {size} bytes past the end", at)
            value, pos = view[pos : pos + size], pos + size
        else:
            raise WireError(f"unsupported wire type {wire} (field {number})", at)
        yield number, wire, value, at
