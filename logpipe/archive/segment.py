"""Reading a segment's contents: decode it to bytes, or grep it, in plain Python.

Why plain Python (no numpy, no pyarrow): ``logpipe decompress``, ``cat`` and ``grep`` on
an archive of a few megabytes are over in a tenth of a second, and importing numpy and
pyarrow alone would take longer than that. The format is laid out so that the standard
library decodes it at C speed: integer columns are fixed-width byte planes (re-interleaved
by slice assignment and read by :mod:`array`), lines are rendered by one ``str.format``
per template mapped over its columns, and the whole segment is encoded to bytes once.

The layout itself is described in docs/FORMAT.md ("Segment contents"); the writer is
:mod:`logpipe.archive.codec`.
"""

from __future__ import annotations

import json
import sys
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Any

__all__ = [
    "SEGMENT_FORMAT",
    "TS_STREAM",
    "SegmentError",
    "decode_int_column",
    "decode_segment",
    "grep_segment",
    "int_typecode",
    "literal_may_match",
    "parse_int_type",
    "read_timestamps",
]

SEGMENT_FORMAT = 2
#: Name of the optional stream of per-line timestamps (int64 ns UTC), typed by ``ts_type``.
TS_STREAM = "ts"

_BIG_ENDIAN = sys.byteorder == "big"


class SegmentError(ValueError):
    """Segment contents that do not add up (a writer bug or a crafted file).

    The container's checksums catch accidental damage before decoding; this error means the
    checksums passed but the streams contradict each other.
    """


def _typecodes(codes: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for code in codes:
        found.setdefault(array(code).itemsize, code)
    return found


_SIGNED = _typecodes("bhilq")
_UNSIGNED = _typecodes("BHILQ")


def int_typecode(width: int, *, signed: bool) -> str:
    """The :mod:`array` typecode of a ``width``-byte integer (1, 2, 4 or 8)."""
    code = (_SIGNED if signed else _UNSIGNED).get(width)
    if code is None:
        raise SegmentError(f"integer width {width} is not 1, 2, 4 or 8 bytes")
    return code


@lru_cache(maxsize=4096)  # a segment repeats a few types (``int:d1:0``) thousands of times
def parse_int_type(kind: str) -> tuple[int, str, int, int]:
    """``(pad, mode, width, base)`` of an integer column type, e.g. ``int:d2:1700000000``.

    ``pad`` is 0 for plain decimals, else the zero-padded digit count. ``mode`` ``v``: each
    value is its stored number plus the base; ``d``: the stored numbers are differences from
    the previous value (the first value is the base plus the first number); ``z``: as ``d``,
    each difference zigzag-mapped (0, 1, 2, 3, 4 -> 0, -1, 1, -2, 2). ``width`` is bytes per
    stored number.
    """
    head, enc, base = [*kind.split(":"), "", ""][:3]
    try:
        if head == "int":
            pad = 0
        elif head.startswith("pad") and head[3:].isdigit():
            pad = int(head[3:])
        else:
            raise ValueError
        if enc[:1] not in ("d", "v", "z") or kind.count(":") != 2:
            raise ValueError
        width = int(enc[1:])
        offset = int(base)
    except ValueError:
        raise SegmentError(f"unknown column type {kind!r}") from None
    int_typecode(width, signed=True)
    return pad, enc[0], width, offset


def unpack_planes(data: bytes, pos: int, count: int, width: int, *, signed: bool) -> list[int]:
    """``count`` integers stored from ``data[pos]`` as ``width`` byte planes.

    Plane *k* holds byte *k* (little-endian order) of every number: the high planes of
    small numbers are runs of zeros, which zstd all but erases.
    """
    size = count * width
    chunk = data[pos : pos + size]
    if len(chunk) != size:
        raise SegmentError(f"integer stream ends {size - len(chunk)} bytes early")
    if width == 1:
        numbers = array(int_typecode(1, signed=signed), chunk)
    else:
        interleaved = bytearray(size)
        for k in range(width):
            interleaved[k::width] = chunk[k * count : (k + 1) * count]
        numbers = array(int_typecode(width, signed=signed))
        numbers.frombytes(interleaved)
        if _BIG_ENDIAN:
            numbers.byteswap()
    return numbers.tolist()


def decode_int_column(data: bytes, pos: int, count: int, kind: str) -> list[int]:
    """The ``count`` integers of a column of type ``kind`` stored from ``data[pos]``.

    One decoder for every integer the codec stores (value columns and the ``ts`` stream),
    so the modes (``v``, ``d``, ``z``) and bases mean the same everywhere.
    """
    _, mode, width, base = parse_int_type(kind)
    numbers = unpack_planes(data, pos, count, width, signed=True)
    if mode == "z":
        numbers = [(n >> 1) ^ -(n & 1) for n in numbers]
    if mode != "v" and numbers:
        numbers[0] += base
        numbers = list(accumulate(numbers))
    elif base:
        numbers = list(map(base.__add__, numbers))
    return numbers


def read_timestamps(header: dict[str, Any], streams: dict[str, bytes]) -> list[int] | None:
    """Each line's timestamp (int64 ns UTC) from the ``ts`` stream, or None without one.

    Segments written by ``logpipe compress`` carry no timestamps; the log store's do. The
    stream is one integer column whose type is the header's ``ts_type`` (docs/FORMAT.md).
    """
    kind = header.get("ts_type")
    if kind is None:
        return None
    if not isinstance(kind, str) or TS_STREAM not in streams:
        raise SegmentError("segment header names a ts type but the ts stream is missing")
    n = int(header["lines"])
    data = streams[TS_STREAM]
    if len(data) != n * parse_int_type(kind)[2]:
        raise SegmentError(f"ts stream holds {len(data)} bytes, not {n} timestamps")
    return decode_int_column(data, 0, n, kind)


def _format_of(pieces: Sequence[str], types: Sequence[str]) -> str:
    """One ``str.format`` pattern that renders a line of the template from its columns."""
    out = [pieces[0].replace("{", "{{").replace("}", "}}")]
    for kind, piece in zip(types, pieces[1:], strict=True):
        if kind == "str":
            out.append("{}")
        else:
            pad = parse_int_type(kind)[0]
            out.append(f"{{:0{pad}d}}" if pad else "{}")
        out.append(piece.replace("{", "{{").replace("}", "}}"))
    return "".join(out)


class SegmentLayout:
    """Which line uses which template, and where each template's columns lie.

    Columns are cut from the shared streams on demand, so ``grep`` reads the string values
    of one template without decoding any other.
    """

    def __init__(self, header: dict[str, Any], streams: dict[str, bytes]) -> None:
        if header.get("format") != SEGMENT_FORMAT:
            raise SegmentError(
                f"segment format {header.get('format')!r} is not supported "
                f"(this logpipe reads format {SEGMENT_FORMAT})"
            )
        self.n = int(header["lines"])
        self.ends_with_newline = bool(header["ends_with_newline"])
        self.streams = streams
        try:
            self.templates: list[dict[str, Any]] = json.loads(streams["dict"])["templates"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SegmentError(f"template dictionary is unreadable: {exc}") from None
        self.line_tpl = unpack_planes(
            streams["lines"], 0, self.n, int(header.get("line_bytes", 1)), signed=False
        )
        counts = Counter(self.line_tpl)
        self.counts = [counts.get(t, 0) for t in range(len(self.templates) + 1)]
        if sum(self.counts) != self.n:
            raise SegmentError("a line refers to a template the dictionary does not have")
        self._int_at: list[int] = []  # byte offset of each template's first integer column
        self._str_at: list[int] = []  # index of each template's first string value
        int_pos = str_pos = 0
        for t, entry in enumerate(self.templates, start=1):
            self._int_at.append(int_pos)
            self._str_at.append(str_pos)
            if len(entry["pieces"]) != len(entry["types"]) + 1:
                raise SegmentError(f"template {t} has pieces and types that do not pair up")
            for kind in entry["types"]:
                if kind == "str":
                    str_pos += self.counts[t]
                else:
                    int_pos += self.counts[t] * parse_int_type(kind)[2]
        self._strs: list[str] | None = None

    def _all_strs(self) -> list[str]:
        if self._strs is None:
            self._strs = self.streams["strs"].decode("utf-8").split("\n")
        return self._strs

    def columns(self, t: int) -> list[list[Any]]:
        """Template ``t``'s value columns (1-based ``t``): strings, or integers."""
        m = self.counts[t]
        int_pos = self._int_at[t - 1]
        str_pos = self._str_at[t - 1]
        out: list[list[Any]] = []
        for kind in self.templates[t - 1]["types"]:
            if kind == "str":
                out.append(self._all_strs()[str_pos : str_pos + m])
                str_pos += m
                continue
            out.append(decode_int_column(self.streams["ints"], int_pos, m, kind))
            int_pos += m * parse_int_type(kind)[2]
        return out

    def render(self, t: int, rows: Sequence[int] | None = None) -> list[str]:
        """Lines of template ``t`` in segment order (only ``rows`` of them when given)."""
        entry = self.templates[t - 1]
        fmt = _format_of(entry["pieces"], entry["types"])
        if not entry["types"]:
            return [fmt.format()] * (self.counts[t] if rows is None else len(rows))
        columns = self.columns(t)
        if rows is not None:
            columns = [[column[r] for r in rows] for column in columns]
        return list(map(fmt.format, *columns))

    def raw_lines(self) -> list[str]:
        """The verbatim lines, bytes mapped to text with ``surrogateescape`` (reversible)."""
        return self.streams["raw"].decode("utf-8", "surrogateescape").split("\n")[: self.counts[0]]

    def str_starts(self) -> list[int]:
        """Index (into the ``strs`` values) of each template's first string value."""
        return self._str_at

    def line_numbers(self) -> dict[int, list[int]]:
        """For each template (0 = verbatim), its lines' 0-based numbers, ascending."""
        where: dict[int, list[int]] = {}
        for number, t in enumerate(self.line_tpl):
            where.setdefault(t, []).append(number)
        return where


def decode_segment(header: dict[str, Any], streams: dict[str, bytes]) -> bytes:
    """The exact bytes the segment was made from."""
    layout = SegmentLayout(header, streams)
    if layout.n == 0:
        return b""
    groups = [layout.raw_lines()]
    groups += [layout.render(t) for t in range(1, len(layout.templates) + 1)]
    nexts: list[Callable[[], str]] = [iter(group).__next__ for group in groups]
    try:
        text = "\n".join([nexts[t]() for t in layout.line_tpl])
    except StopIteration:
        raise SegmentError("a template has fewer rendered lines than lines using it") from None
    if layout.ends_with_newline:
        text += "\n"
    return text.encode("utf-8", "surrogateescape")


def grep_segment(
    header: dict[str, Any], streams: dict[str, bytes], pattern: str
) -> list[tuple[int, bytes]]:
    """The (0-based line number, line) pairs of a segment that contain ``pattern``.

    Only what can match is turned back into text: a template whose literal pieces overlap
    the pattern (or whose values are adjacent, or whose integer columns could hold an
    all-digit pattern) is rendered whole; otherwise only the lines whose string values
    contain the pattern, found by searching the whole ``strs`` stream as bytes, are
    rendered. Verbatim lines are searched as bytes.
    """
    if "\n" in pattern:
        return []  # lines never hold a newline
    layout = SegmentLayout(header, streams)
    needle = pattern.encode("utf-8", "surrogateescape")
    whole: set[int] = set()  # templates rendered whole (0 = the verbatim lines)
    if layout.counts[0] and needle in layout.streams["raw"]:
        whole.add(0)
    for t, entry in enumerate(layout.templates, start=1):
        if layout.counts[t] and literal_may_match(pattern, entry):
            whole.add(t)
    some: dict[int, set[int]] = {}  # template -> rows with a string value holding the needle
    for t, row in _string_hits(layout, needle):
        if t not in whole:
            some.setdefault(t, set()).add(row)
    if not whole and not some:
        return []
    where = layout.line_numbers()
    found: list[tuple[int, bytes]] = []
    for t in sorted(whole | some.keys()):
        if t in whole:
            lines = layout.raw_lines() if t == 0 else layout.render(t)
            rows: Sequence[int] = range(len(lines))
        else:
            rows = sorted(some[t])
            lines = layout.render(t, rows)
        numbers = where[t]
        for row, line in zip(rows, lines, strict=True):
            if pattern in line:
                found.append((numbers[row], line.encode("utf-8", "surrogateescape")))
    found.sort()
    return found


def _string_hits(layout: SegmentLayout, needle: bytes) -> Iterator[tuple[int, int]]:
    """(template, row) of every string value that contains ``needle`` (no newline in it).

    The ``strs`` stream is searched as one byte string (a C-speed scan); a hit's value is
    found by counting the newlines before it, and its template and row from where each
    template's values start.
    """
    data = layout.streams["strs"]
    starts = layout.str_starts()
    pos = data.find(needle)
    value = 0
    counted = 0  # newlines before ``counted`` are in ``value``
    while pos >= 0:
        value += data.count(b"\n", counted, pos)
        t = bisect_right(starts, value)  # 1-based: starts[t - 1] <= value < starts[t]
        yield t, (value - starts[t - 1]) % layout.counts[t]
        end = data.find(b"\n", pos)
        if end < 0:
            return
        value += 1
        counted = end + 1
        pos = data.find(needle, counted)


def literal_may_match(pattern: str, entry: dict[str, Any]) -> bool:
    """Whether the pattern could cross or lie in a template's literal text (never misses).

    ``entry`` is a dictionary entry (``pieces`` and ``types``; only whether a type is
    ``str`` matters). When this is False, an occurrence of the pattern in a line of the
    template lies wholly inside one string value: the log store's segment filter relies on it.
    """
    pieces: list[str] = entry["pieces"]
    for piece in pieces:
        if not piece:
            continue
        if pattern in piece or piece in pattern:
            return True
        overlap = min(len(piece), len(pattern))
        # quick rejects: an overlap must end with the piece's last character (or start with
        # its first), so that character has to occur in the pattern's matching part
        tail_may = piece[-1] in pattern[: overlap - 1]
        head_may = piece[0] in pattern[len(pattern) - overlap + 1 :]
        for k in range(1, overlap if tail_may or head_may else 1):
            if (tail_may and piece.endswith(pattern[:k])) or (
                head_may and piece.startswith(pattern[-k:])
            ):
                return True
    if any(not p for p in pieces[1:-1]):
        return True  # adjacent values: the pattern may span two of them
    return pattern.isdigit() and any(kind != "str" for kind in entry["types"])
