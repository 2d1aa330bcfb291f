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

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.archive.varint import decode_varints, encode_varints, zigzag_decode, zigzag_encode
from logpipe.arrowutil import from_numpy
from logpipe.parsing import TemplateMiner
from logpipe.parsing.masking import VAR

__all__ = [
    "SEGMENT_FORMAT",
    "EncodedSegment",
    "decode_segment",
    "encode_segment",
    "render_templates",
    "split_lines",
]

SEGMENT_FORMAT = 1
_WS_SPLIT = re.compile(r"(\s+)")
_INT = "^(?:0|[1-9][0-9]{0,17})$"
_PADDED = "^[0-9]{1,18}$"


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


@lru_cache(maxsize=16384)
def _template_plan(template: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(tok.split(VAR)) for tok in template.split())


def decompose(template: str, line: str) -> tuple[tuple[str, ...], list[str]] | None:
    """Literal pieces (with the line's own whitespace) and values, or None if it does not fit.

    ``"".join(p + v for p, v in zip(pieces, values + [""]))`` is ``line`` whenever a result is
    returned (the caller checks it anyway).
    """
    parts = _WS_SPLIT.split(line)
    toks = parts[0::2]
    seps = parts[1::2]
    lead = trail = ""
    if toks and toks[0] == "" and seps:
        lead = seps[0]
        toks = toks[1:]
        seps = seps[1:]
    if toks and toks[-1] == "" and seps:
        trail = seps[-1]
        toks = toks[:-1]
        seps = seps[:-1]
    if not toks or toks == [""]:
        return (line,), []
    plan = _template_plan(template)
    if len(plan) != len(toks):
        return None
    pieces = [lead]
    values: list[str] = []
    last = len(toks) - 1
    for i, (literal, tok) in enumerate(zip(plan, toks, strict=True)):
        if len(literal) == 1:
            if literal[0] != tok:
                return None
            pieces[-1] += tok
        else:
            head, tail = literal[0], literal[-1]
            if len(tok) < len(head) + len(tail) or not (
                tok.startswith(head) and tok.endswith(tail)
            ):
                return None
            middle = tok[len(head) : len(tok) - len(tail)]
            pieces[-1] += head
            pos = 0
            for lit in literal[1:-1]:
                found = middle.find(lit, pos)
                if found < 0:
                    return None
                values.append(middle[pos:found])
                pieces.append(lit)
                pos = found + len(lit)
            values.append(middle[pos:])
            pieces.append(tail)
        if i < last:
            pieces[-1] += seps[i]
    pieces[-1] += trail
    return tuple(pieces), values


def _render(pieces: Sequence[str], values: Sequence[str]) -> str:
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(value)
        out.append(piece)
    return "".join(out)


def _column_type(values: pa.Array) -> str:
    """``int``, ``padN`` (N-digit zero-padded) or ``str``: how a column is stored."""
    if len(values) == 0:
        return "str"
    if pc.all(pc.match_substring_regex(values, _INT)).as_py():
        return "int"
    if pc.all(pc.match_substring_regex(values, _PADDED)).as_py():
        widths = pc.utf8_length(values)
        lo, hi = pc.min_max(widths).values()
        if lo.as_py() == hi.as_py():
            return f"pad{lo.as_py()}"
    return "str"


def encode_segment(
    lines: Sequence[bytes], ends_with_newline: bool, miner: TemplateMiner
) -> EncodedSegment:
    """Encode the raw lines of one segment (the miner keeps learning across segments)."""
    n = len(lines)
    texts: list[str | None] = []
    for raw in lines:
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    valid_idx = [i for i, t in enumerate(texts) if t is not None]
    content = pa.array([texts[i] for i in valid_idx], pa.string())
    line_tpl = np.zeros(n, dtype=np.int64)
    keys: dict[tuple[str, ...], int] = {}
    rows: list[list[int]] = []  # per template: line numbers
    cols: list[list[list[str]]] = []  # per template, per slot: values
    if valid_idx:
        ids = miner.add_batch(content)
        templates, _ = miner.line_templates(ids, content)
        for i, template in zip(valid_idx, templates.to_pylist(), strict=True):
            text = texts[i]
            assert text is not None
            split = decompose(template or "", text)
            if split is None:
                continue
            pieces, values = split
            if _render(pieces, values) != text:  # lossless by construction: verify
                continue
            t = keys.get(pieces)
            if t is None:
                t = keys[pieces] = len(rows) + 1
                rows.append([])
                cols.append([[] for _ in values])
            line_tpl[i] = t
            rows[t - 1].append(i)
            for slot, value in zip(cols[t - 1], values, strict=True):
                slot.append(value)
    ints: list[bytes] = []
    strs: list[str] = []
    dictionary = []
    for pieces, slots in zip(keys, cols, strict=True):
        types = []
        for values in slots:
            arr = pa.array(values, pa.string())
            kind = _column_type(arr)
            types.append(kind)
            if kind == "str":
                strs.append("\n".join(values) + "\n")
            else:
                numbers = pc.cast(arr, pa.int64()).to_numpy()
                deltas = np.diff(numbers, prepend=np.int64(0))
                ints.append(encode_varints(zigzag_encode(deltas)))
        dictionary.append({"pieces": list(pieces), "types": types})
    verbatim = [lines[i] for i in range(n) if line_tpl[i] == 0]
    streams = {
        "dict": json.dumps({"templates": dictionary}, ensure_ascii=False).encode("utf-8"),
        "lines": encode_varints(line_tpl.astype(np.uint64)),
        "ints": b"".join(ints),
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

    def render(self, t: int) -> pa.Array:
        """The lines of template ``t`` (1-based), in segment order, as binary."""
        entry = self.templates[t - 1]
        m = int(self.counts[t])
        pieces = entry["pieces"]
        int_pos = self.int_start[t - 1]
        str_pos = self.str_start[t - 1]
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


def render_templates(
    header: dict[str, Any],
    streams: dict[str, bytes],
    wanted: Callable[[list[str], list[str], Callable[[str], bool]], bool],
    raw_needle: bytes | None = None,
) -> tuple[pa.Array, pa.Array]:
    """Lines (and their 0-based numbers) of only the templates ``wanted`` accepts.

    ``wanted(pieces, types, has_value)`` decides per template; ``has_value(text)`` tells
    whether any string value of the template contains ``text``. Verbatim lines are included
    when ``raw_needle`` is None or occurs in them.
    """
    view = _SegmentView(header, streams)
    chosen: list[int] = []
    if int(view.counts[0]) and (raw_needle is None or raw_needle in streams["raw"]):
        chosen.append(0)
    for t, entry in enumerate(view.templates, start=1):
        if not view.counts[t]:
            continue

        def has_value(text: str, t: int = t) -> bool:
            return any(text in value for value in view.str_values(t))

        if wanted(entry["pieces"], entry["types"], has_value):
            chosen.append(t)
    return view.assemble(chosen)
