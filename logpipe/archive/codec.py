"""Segment codec: raw log bytes <-> template dictionary + typed variable columns.

Why this layout (logzip's insight): a log line is a template plus a few values, and values of
one slot of one template look alike (all timestamps, all block ids, all sizes). Storing each
slot as its own column puts similar bytes together, so zstd compresses them far better than
the interleaved text; integer slots become delta-coded varints, which shrink further.

Lossless by construction: a line is split into its template's literal pieces (with the
line's own whitespace) and values, and is stored that way only if joining them gives the line
back exactly; anything else (invalid UTF-8, a line that does not fit its template, a
truncated huge line) is stored verbatim. An integer column is used only when every value
prints back to the same digits (no sign, no leading zeros, or one fixed zero-padded width).

Streams of a segment (each compressed by the container):

``dict``   JSON: ``{"templates": [{"pieces": [...], "types": [...]}, ...]}``
``lines``  varint per line: 0 = verbatim, t = templates[t - 1]
``ints``   zigzag varints of the deltas of every integer column, column after column
``strs``   every string column's values, each followed by ``\\n`` (no value holds a newline)
``raw``    the verbatim lines, each followed by ``\\n``
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.archive.varint import decode_varints, encode_varints, zigzag_decode, zigzag_encode
from logpipe.arrowutil import from_numpy
from logpipe.parsing import TemplateMiner
from logpipe.parsing.masking import RE2_WHITESPACE, VAR
from logpipe.parsing.params import render_exact, split_exact

__all__ = [
    "SEGMENT_FORMAT",
    "EncodedSegment",
    "decode_segment",
    "encode_segment",
    "grep_segment",
    "segment_is_exact",
    "split_lines",
    "verbatim_segment",
]

SEGMENT_FORMAT = 1


@dataclass(frozen=True)
class EncodedSegment:
    """What the container stores for one segment."""

    header: dict[str, Any]
    streams: dict[str, bytes]


def split_lines(chunk: bytes) -> tuple[list[bytes], bool]:
    """Lines of ``chunk`` without terminators, and whether it ended with a newline."""
    lines = chunk.split(b"\n")
    ends_with_newline = chunk.endswith(b"\n")
    if ends_with_newline or not chunk:
        lines.pop()
    return lines, ends_with_newline


_NON_WS = f"[^{RE2_WHITESPACE}]"
_SMALL_GROUP = 16  # template groups up to this size are split in Python, not with kernels


class _Templates:
    """The segment's archive templates as they are found: pieces, lines and value columns."""

    def __init__(self, n_lines: int) -> None:
        self.line_tpl = np.zeros(n_lines, dtype=np.int64)  # 0 = verbatim
        self.keys: dict[tuple[str, ...], int] = {}
        self.rows: list[list[int]] = []
        self.cols: list[list[list[str]]] = []

    def slot_of(self, pieces: tuple[str, ...]) -> int:
        t = self.keys.get(pieces)
        if t is None:
            t = self.keys[pieces] = len(self.rows) + 1
            self.rows.append([])
            self.cols.append([[] for _ in pieces[1:]])
        return t

    def add(self, pieces: tuple[str, ...], values: list[str], line: int) -> None:
        t = self.slot_of(pieces)
        self.line_tpl[line] = t
        self.rows[t - 1].append(line)
        for slot, value in zip(self.cols[t - 1], values, strict=True):
            slot.append(value)

    def add_many(self, pieces: tuple[str, ...], lines: np.ndarray, values: list[pa.Array]) -> None:
        """Record many lines of one archive template at once (values as Arrow columns)."""
        t = self.slot_of(pieces)
        self.line_tpl[lines] = t
        self.rows[t - 1].extend(lines.tolist())
        for slot, column in zip(self.cols[t - 1], values, strict=True):
            slot.extend(column.to_pylist())

    def sort_lines(self) -> None:
        """A template's values must be in line order (template groups may share pieces)."""
        for t, lines_of in enumerate(self.rows):
            if any(x > y for x, y in itertools.pairwise(lines_of)):
                perm = sorted(range(len(lines_of)), key=lines_of.__getitem__)
                self.rows[t] = [lines_of[i] for i in perm]
                self.cols[t] = [[slot[i] for i in perm] for slot in self.cols[t]]


def _line_shapes(content: pa.Array) -> pa.Array:
    """Each line with its non-whitespace runs replaced by ``\x01`` (dictionary-encoded)."""
    return pc.dictionary_encode(pc.replace_substring_regex(content, f"{_NON_WS}+", "\x01"))


def _split_by_template(
    templates: pa.Array,
    content: pa.Array,
    line_no: np.ndarray,
    found_: _Templates,
    layout: pa.Array,
) -> None:
    """Split every line into pieces and values, vectorised.

    Lines are grouped by template *and* by their whitespace layout (one pass that keeps
    only the whitespace runs), so each group is matched by one RE2 pattern that captures
    only the values; its pieces are known from the layout. Small groups go line by line in
    Python, where the kernels' fixed costs would dominate. Lines that fit no pattern exactly
    stay verbatim.
    """
    tpl = pc.dictionary_encode(templates)
    texts = tpl.dictionary.to_pylist()
    shapes = layout.dictionary.to_pylist()
    key = tpl.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(shapes) + (
        layout.indices.to_numpy(zero_copy_only=False)
    )
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        members = order[a:b]
        group_key = int(key[members[0]])
        template = texts[group_key // len(shapes)]
        if b - a <= _SMALL_GROUP:
            for m in members.tolist():
                text = content[m].as_py()
                split = split_exact(template, text)
                if split is None or render_exact(*split) != text:
                    continue
                found_.add(split[0], split[1], int(line_no[m]))
            continue
        compiled = _layout_pattern(template, shapes[group_key % len(shapes)])
        if compiled is None:
            continue
        pattern, pieces, n_var = compiled
        sub = content.take(from_numpy(members))
        try:
            found = pc.extract_regex(sub, pattern=pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        ok = pc.is_valid(found)
        kept = members[ok.to_numpy(zero_copy_only=False)]
        if len(kept):
            columns = [found.field(j).filter(ok) for j in range(n_var)]
            found_.add_many(pieces, line_no[kept], columns)
    found_.sort_lines()


@lru_cache(maxsize=16384)
def _layout_pattern(template: str, shape: str) -> tuple[str, tuple[str, ...], int] | None:
    """Pattern, pieces and value count for lines of ``template`` spaced like ``shape``.

    ``shape`` is the line with every non-whitespace run replaced by ``\x01``: the runs of
    whitespace around and between its tokens.
    """
    spaces = shape.split("\x01")
    tokens = template.split()
    if len(spaces) != len(tokens) + 1:
        return None
    if not tokens:
        return "(?s)^" + re.escape(shape) + "$", (shape,), 0
    parts = ["(?s)^", re.escape(spaces[0])]
    pieces = [spaces[0]]
    n_var = 0
    for i, token in enumerate(tokens):
        if i:
            parts.append(re.escape(spaces[i]))
            pieces[-1] += spaces[i]
        for k, literal in enumerate(token.split(VAR)):
            if k:
                parts.append(f"(?P<v{n_var}>{_NON_WS}*?)")
                pieces.append("")
                n_var += 1
            parts.append(re.escape(literal))
            pieces[-1] += literal
    parts.append(re.escape(spaces[-1]) + "$")
    pieces[-1] += spaces[-1]
    return "".join(parts), tuple(pieces), n_var


_INT_COLUMN = re.compile(r"(?:(?:0|[1-9][0-9]{0,17})\n)+")
_PAD_COLUMNS: dict[int, re.Pattern[str]] = {}


def _column_type(values: list[str]) -> tuple[str, str]:
    """How a column is stored (``int``, ``padN`` N-digit zero-padded, ``str``) and its text.

    An integer type is chosen only when every value prints back to the same digits.
    """
    joined = "\n".join(values) + "\n"
    if not values:
        return "str", joined
    if _INT_COLUMN.fullmatch(joined):
        return "int", joined
    width = len(values[0])
    if 0 < width <= 18:
        pad = _PAD_COLUMNS.get(width)
        if pad is None:
            pad = _PAD_COLUMNS[width] = re.compile(rf"(?:[0-9]{{{width}}}\n)+")
        if pad.fullmatch(joined):
            return f"pad{width}", joined
    return "str", joined


def _encode_ints(columns: list[list[str]]) -> bytes:
    """Delta + zigzag + varint of every integer column, in one numpy pass."""
    if not columns:
        return b""
    lengths = np.array([len(c) for c in columns], dtype=np.int64)
    numbers = np.array([int(v) for c in columns for v in c], dtype=np.int64)
    deltas = np.diff(numbers, prepend=np.int64(0))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    deltas[starts] = numbers[starts]  # each column starts from zero
    return encode_varints(zigzag_encode(deltas))


def encode_segment(
    lines: Sequence[bytes], ends_with_newline: bool, miner: TemplateMiner, *, verify: bool = True
) -> EncodedSegment:
    """Encode the raw lines of one segment (the miner keeps learning across segments).

    With ``verify`` (the default) the segment is decoded and compared with its input before
    it is returned; a caller that verifies on its own (concurrently) passes False.
    """
    n = len(lines)
    texts: list[str | None] = []
    for raw in lines:
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    valid_idx = [i for i, t in enumerate(texts) if t is not None]
    content = pa.array([texts[i] for i in valid_idx], pa.string())
    found = _Templates(n)
    if valid_idx:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the whitespace layout needs no template: compute it while the miner works
            shapes = pool.submit(_line_shapes, content)
            ids = miner.add_batch(content)
            templates, _ = miner.line_templates(ids, content)
            layout = shapes.result()
        _split_by_template(
            pc.fill_null(templates, ""), content, np.asarray(valid_idx), found, layout
        )
    int_columns: list[list[str]] = []
    strs: list[str] = []
    dictionary = []
    for pieces, slots in zip(found.keys, found.cols, strict=True):
        types = []
        for values in slots:
            kind, joined = _column_type(values)
            types.append(kind)
            if kind == "str":
                strs.append(joined)
            else:
                int_columns.append(values)
        dictionary.append({"pieces": list(pieces), "types": types})
    line_tpl = found.line_tpl
    verbatim = [lines[i] for i in range(n) if line_tpl[i] == 0]
    streams = {
        "dict": json.dumps({"templates": dictionary}, ensure_ascii=False).encode("utf-8"),
        "lines": encode_varints(line_tpl.astype(np.uint64)),
        "ints": _encode_ints(int_columns),
        "strs": "".join(strs).encode("utf-8"),
        "raw": b"".join(line + b"\n" for line in verbatim),
    }
    header = {
        "format": SEGMENT_FORMAT,
        "lines": n,
        "verbatim": len(verbatim),
        "templates": len(dictionary),
        "ends_with_newline": ends_with_newline,
    }
    segment = EncodedSegment(header, streams)
    if verify and not segment_is_exact(segment, lines, ends_with_newline):
        # never expected; if it ever happens the segment is stored verbatim, not lost
        return verbatim_segment(lines, ends_with_newline)
    return segment


def segment_is_exact(
    segment: EncodedSegment, lines: Sequence[bytes], ends_with_newline: bool
) -> bool:
    """Whether ``segment`` decodes to exactly the lines it was made from."""
    original = b"".join(line + b"\n" for line in lines)
    if lines and not ends_with_newline:
        original = original[:-1]
    return decode_segment(segment.header, segment.streams) == original


def verbatim_segment(lines: Sequence[bytes], ends_with_newline: bool) -> EncodedSegment:
    streams = {
        "dict": b'{"templates": []}',
        "lines": encode_varints(np.zeros(len(lines), dtype=np.uint64)),
        "ints": b"",
        "strs": b"",
        "raw": b"".join(line + b"\n" for line in lines),
    }
    header = {
        "format": SEGMENT_FORMAT,
        "lines": len(lines),
        "verbatim": len(lines),
        "templates": 0,
        "ends_with_newline": ends_with_newline,
    }
    return EncodedSegment(header, streams)


class _SegmentView:
    """A decoded segment's layout: which line uses which template, and its columns.

    Columns are cut out of the shared streams lazily, so ``grep`` can look at the string
    values of one template without turning any other template back into text.
    """

    def __init__(self, header: dict[str, Any], streams: dict[str, bytes]) -> None:
        self.n = int(header["lines"])
        self.ends_with_newline = bool(header["ends_with_newline"])
        self.streams = streams
        self.templates = json.loads(streams["dict"].decode("utf-8"))["templates"]
        self.line_tpl = decode_varints(streams["lines"], self.n).astype(np.int64)
        self.counts = np.bincount(self.line_tpl, minlength=len(self.templates) + 1)
        int_total = 0
        str_total = 0
        self.int_start: list[int] = []
        self.str_start: list[int] = []
        for t, entry in enumerate(self.templates, start=1):
            self.int_start.append(int_total)
            self.str_start.append(str_total)
            m = int(self.counts[t])
            for kind in entry["types"]:
                if kind == "str":
                    str_total += m
                else:
                    int_total += m
        self._int_total = int_total
        self._ints: np.ndarray | None = None
        self._strs: list[str] | None = None

    def ints(self) -> np.ndarray:
        if self._ints is None:
            self._ints = zigzag_decode(decode_varints(self.streams["ints"], self._int_total))
        return self._ints

    def strs(self) -> list[str]:
        if self._strs is None:
            self._strs = self.streams["strs"].decode("utf-8").split("\n")
        return self._strs

    def str_values(self, t: int) -> list[str]:
        """All string values of template ``t`` (1-based), every column."""
        entry = self.templates[t - 1]
        n_str = sum(1 for kind in entry["types"] if kind == "str")
        start = self.str_start[t - 1]
        return self.strs()[start : start + n_str * int(self.counts[t])]

    def rows_with_value(self, t: int, text: str) -> set[int]:
        """Rows (0-based, within template ``t``) with a string value containing ``text``."""
        m = int(self.counts[t])
        values = self.str_values(t)
        return {i % m for i, value in enumerate(values) if text in value} if m else set()

    def render_rows(self, t: int, rows: Sequence[int]) -> list[bytes]:
        """Only the given rows of template ``t``, rendered in Python."""
        entry = self.templates[t - 1]
        m = int(self.counts[t])
        int_pos = self.int_start[t - 1]
        str_pos = self.str_start[t - 1]
        columns: list[list[str]] = []
        for kind in entry["types"]:
            if kind == "str":
                column = self.strs()[str_pos : str_pos + m]
                columns.append([column[r] for r in rows])
                str_pos += m
            else:
                numbers = np.cumsum(self.ints()[int_pos : int_pos + m])
                int_pos += m
                width = int(kind[3:]) if kind.startswith("pad") else 0
                columns.append([str(int(numbers[r])).rjust(width, "0") for r in rows])
        pieces = entry["pieces"]
        return [
            render_exact(pieces, [column[i] for column in columns]).encode("utf-8")
            for i in range(len(rows))
        ]

    def render(self, t: int) -> pa.Array:
        """The lines of template ``t`` (1-based), in segment order, as binary."""
        entry = self.templates[t - 1]
        m = int(self.counts[t])
        pieces = entry["pieces"]
        int_pos = self.int_start[t - 1]
        str_pos = self.str_start[t - 1]
        if m <= _SMALL_GROUP:
            return pa.array(self._render_small(entry, m, int_pos, str_pos), pa.binary())
        columns: list[pa.Array] = []
        for kind in entry["types"]:
            if kind == "str":
                columns.append(pa.array(self.strs()[str_pos : str_pos + m], pa.string()))
                str_pos += m
            else:
                values = np.cumsum(self.ints()[int_pos : int_pos + m])
                int_pos += m
                text = pc.cast(from_numpy(values), pa.string())
                if kind.startswith("pad"):
                    text = pc.utf8_lpad(text, width=int(kind[3:]), padding="0")
                columns.append(text)
        if not columns:
            return pa.array([pieces[0].encode("utf-8")] * m, pa.binary())
        parts: list[Any] = [pieces[0]]
        for column, piece in zip(columns, pieces[1:], strict=True):
            parts.append(column)
            parts.append(piece)
        return pc.binary_join_element_wise(*parts, "").cast(pa.binary())

    def _render_small(
        self, entry: dict[str, Any], m: int, int_pos: int, str_pos: int
    ) -> list[bytes]:
        """The same lines as :meth:`render`, in Python: cheaper for a handful of lines."""
        columns: list[list[str]] = []
        for kind in entry["types"]:
            if kind == "str":
                columns.append(self.strs()[str_pos : str_pos + m])
                str_pos += m
            else:
                numbers = np.cumsum(self.ints()[int_pos : int_pos + m]).tolist()
                int_pos += m
                width = int(kind[3:]) if kind.startswith("pad") else 0
                columns.append([str(v).rjust(width, "0") for v in numbers])
        pieces = entry["pieces"]
        return [
            render_exact(pieces, [column[i] for column in columns]).encode("utf-8")
            for i in range(m)
        ]

    def raw_lines(self) -> pa.Array:
        return pa.array(self.streams["raw"].split(b"\n")[: int(self.counts[0])], pa.binary())

    def assemble(self, chosen: Sequence[int]) -> tuple[pa.Array, pa.Array]:
        """Lines of the chosen templates (0 = verbatim lines) in order, with line numbers."""
        arrays: list[pa.Array] = []
        numbers: list[np.ndarray] = []
        for t in chosen:
            arrays.append(self.raw_lines() if t == 0 else self.render(t))
            numbers.append(np.flatnonzero(self.line_tpl == t))
        if not arrays:
            return pa.array([], pa.binary()), pa.array([], pa.int64())
        lines = pa.concat_arrays(arrays)
        where = np.concatenate(numbers)
        order = np.argsort(where, kind="stable")
        return lines.take(from_numpy(order)), from_numpy(where[order])


def decode_segment(header: dict[str, Any], streams: dict[str, bytes]) -> bytes:
    """The exact bytes the segment was made from."""
    view = _SegmentView(header, streams)
    if view.n == 0:
        return b""
    lines, _ = view.assemble(range(len(view.templates) + 1))
    body = b"\n".join(lines.to_pylist())
    return body + b"\n" if view.ends_with_newline else body


def grep_segment(
    header: dict[str, Any], streams: dict[str, bytes], pattern: str
) -> list[tuple[int, bytes]]:
    """The (0-based line number, line) pairs of a segment that contain ``pattern``.

    Only what can match is turned back into text: a template whose literal pieces overlap
    the pattern (or whose values are adjacent, or whose integer columns could hold an
    all-digit pattern) is rendered whole; otherwise only the lines whose string values
    contain the pattern are rendered, one by one. Verbatim lines are searched as bytes.
    """
    view = _SegmentView(header, streams)
    needle = pattern.encode("utf-8")
    found: list[tuple[int, bytes]] = []
    if int(view.counts[0]) and needle in streams["raw"]:
        raw_numbers = np.flatnonzero(view.line_tpl == 0).tolist()
        for number, line in zip(raw_numbers, view.raw_lines().to_pylist(), strict=True):
            if needle in line:
                found.append((number, line))
    for t, entry in enumerate(view.templates, start=1):
        m = int(view.counts[t])
        if not m:
            continue
        where = np.flatnonzero(view.line_tpl == t)
        if _literal_may_match(pattern, entry["pieces"], entry["types"]):
            lines = view.render(t)
            hit = pc.match_substring(lines, pattern=pattern)
            numbers = where[hit.to_numpy(zero_copy_only=False)].tolist()
            found.extend(zip(numbers, lines.filter(hit).to_pylist(), strict=True))
            continue
        rows = sorted(view.rows_with_value(t, pattern))
        if rows:
            for row, line in zip(rows, view.render_rows(t, rows), strict=True):
                if needle in line:
                    found.append((int(where[row]), line))
    found.sort()
    return found


def _literal_may_match(pattern: str, pieces: Sequence[str], types: Sequence[str]) -> bool:
    """Whether the pattern could cross or lie in a template's literal text (never misses)."""
    for piece in pieces:
        if not piece:
            continue
        if pattern in piece or piece in pattern:
            return True
        for k in range(1, min(len(piece), len(pattern))):
            if piece.endswith(pattern[:k]) or piece.startswith(pattern[-k:]):
                return True
    if any(not p for p in pieces[1:-1]):
        return True  # adjacent values: the pattern may span two of them
    return pattern.isdigit() and any(t != "str" for t in types)
