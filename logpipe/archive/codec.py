"""Segment codec, writing side: raw log bytes -> template dictionary + typed value columns.

Why this layout (logzip's insight): a log line is a template plus a few values, and values of
one slot of one template look alike (all timestamps, all block ids, all sizes). Storing each
slot as its own column puts similar bytes together, so zstd compresses them far better than
the interleaved text; integer slots become fixed-width numbers (deltas where that is
smaller), stored as byte planes whose high planes are nearly all zeros.

Lossless by construction: a line is split into its template's literal pieces (with the
line's own whitespace) and values, and is stored that way only if joining them gives the line
back exactly; anything else (invalid UTF-8, a line that does not fit its template, a
truncated huge line) is stored verbatim. An integer column is used only when every value
prints back to the same digits (no sign, no leading zeros, or one fixed zero-padded width).

The streams are described in docs/FORMAT.md ("Segment contents"). Reading them back is
:mod:`logpipe.archive.segment`, which needs neither numpy nor pyarrow so that the read
commands start fast.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.archive.segment import SEGMENT_FORMAT, decode_segment
from logpipe.arrowutil import from_numpy
from logpipe.parsing import TemplateMiner
from logpipe.parsing.masking import RE2_WHITESPACE, VAR
from logpipe.parsing.params import render_exact, split_exact

__all__ = [
    "EncodedSegment",
    "encode_segment",
    "segment_is_exact",
    "split_lines",
    "verbatim_segment",
]


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
_KERNEL_THREADS = 2  # Arrow kernels release the GIL: this many run beside the Python work
_MINE_CHUNKS = 4  # a segment is mined in this many chunks while the next are premasked...
_MINE_CHUNK_LINES = 4096  # ...of at least this many lines (kernel calls have fixed costs)


class _Templates:
    """The segment's archive templates as they are found, and every value as a cell.

    A cell is (column, line, text); a column is one slot of one template, numbered in
    template order. Cells arrive per group (Arrow columns from the kernels, Python lists from
    the small groups) and are sorted into column-then-line order once, in :meth:`columns`.
    """

    def __init__(self, n_lines: int) -> None:
        self.line_tpl = np.zeros(n_lines, dtype=np.int64)  # 0 = verbatim
        self.keys: dict[tuple[str, ...], int] = {}
        self.first_column: list[int] = []  # column number of each template's first slot
        self.n_columns = 0
        self._parts: list[pa.Array] = []
        self._part_columns: list[np.ndarray] = []
        self._part_lines: list[np.ndarray] = []
        self._texts: list[str] = []
        self._columns: list[int] = []
        self._lines: list[int] = []

    def slot_of(self, pieces: tuple[str, ...]) -> int:
        t = self.keys.get(pieces)
        if t is None:
            t = self.keys[pieces] = len(self.first_column) + 1
            self.first_column.append(self.n_columns)
            self.n_columns += len(pieces) - 1
        return t

    def add(self, pieces: tuple[str, ...], values: list[str], line: int) -> None:
        """Record one line of an archive template (values as Python strings)."""
        t = self.slot_of(pieces)
        self.line_tpl[line] = t
        first = self.first_column[t - 1]
        self._texts.extend(values)
        self._columns.extend(range(first, first + len(values)))
        self._lines.extend([line] * len(values))

    def add_many(self, pieces: tuple[str, ...], lines: np.ndarray, values: list[pa.Array]) -> None:
        """Record many lines of one archive template at once (values as Arrow columns)."""
        t = self.slot_of(pieces)
        self.line_tpl[lines] = t
        for slot, column in enumerate(values, start=self.first_column[t - 1]):
            self._parts.append(column)
            self._part_columns.append(np.full(len(lines), slot, dtype=np.int64))
            self._part_lines.append(lines)

    def columns(self) -> tuple[pa.Array, np.ndarray]:
        """Every cell's text in column-then-line order, and where each column starts."""
        parts = [*self._parts, pa.array(self._texts, pa.string())]
        column = np.concatenate([*self._part_columns, np.array(self._columns, dtype=np.int64)])
        line = np.concatenate([*self._part_lines, np.array(self._lines, dtype=np.int64)])
        order = np.argsort(column * len(self.line_tpl) + line, kind="stable")  # runs: fast
        texts = pa.concat_arrays([p.cast(pa.string()) for p in parts]).take(from_numpy(order))
        starts = np.searchsorted(column[order], np.arange(self.n_columns))
        return texts, starts


def _mine(
    miner: TemplateMiner, content: pa.Array, pool: ThreadPoolExecutor
) -> tuple[pa.Array, Future[pa.Array]]:
    """Mine ``content`` in order, with the kernel work on ``pool``: the ids, and the layout.

    The miner is Python; the premask and the whitespace layout are Arrow kernels that
    release the GIL. So the segment is premasked in chunks ahead of the miner, and the
    layout (which needs no template) is computed behind them, while the miner works.
    """
    n = len(content)
    step = max(_MINE_CHUNK_LINES, -(-n // _MINE_CHUNKS))
    chunks = [content.slice(start, step) for start in range(0, n, step)]
    masked = [pool.submit(miner.premasked, chunk) for chunk in chunks]
    layout = pool.submit(_line_shapes, content)
    ids = [miner.add_batch(c, premasked=m.result()) for c, m in zip(chunks, masked, strict=True)]
    return (ids[0] if len(ids) == 1 else pa.concat_arrays(ids)), layout


def _line_shapes(content: pa.Array) -> pa.Array:
    """Each line with its non-whitespace runs replaced by ``\x01`` (dictionary-encoded)."""
    return pc.dictionary_encode(pc.replace_substring_regex(content, f"{_NON_WS}+", "\x01"))


def _split_by_template(
    templates: pa.Array,
    content: pa.Array,
    line_no: np.ndarray,
    found_: _Templates,
    layout: pa.Array,
    *,
    pool: ThreadPoolExecutor,
) -> None:
    """Split every line into pieces and values, vectorised.

    Lines are grouped by template *and* by their whitespace layout (one pass that keeps
    only the whitespace runs), so each group is matched by one RE2 pattern that captures
    only the values; its pieces are known from the layout. The patterns run on ``pool``
    (the kernels release the GIL) while small groups go line by line in Python here, where
    the kernels' fixed costs would dominate. Lines that fit no pattern exactly stay
    verbatim.
    """
    tpl = pc.dictionary_encode(templates)
    texts = tpl.dictionary.to_pylist()
    shapes = layout.dictionary.to_pylist()
    key = tpl.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(shapes) + (
        layout.indices.to_numpy(zero_copy_only=False)
    )
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True]).tolist()
    groups = []
    for a, b in itertools.pairwise(bounds):
        members = order[a:b]
        group_key = int(key[members[0]])
        template = texts[group_key // len(shapes)]
        job = None
        if b - a > _SMALL_GROUP:
            compiled = _layout_pattern(template, shapes[group_key % len(shapes)])
            if compiled is None:
                continue
            job = pool.submit(_match_group, content, members, compiled)
        groups.append((members, template, job))
    for members, template, job in groups:  # small groups first: the kernels run meanwhile
        if job is None:
            for m in members.tolist():
                text = content[m].as_py()
                split = split_exact(template, text)
                if split is None or render_exact(*split) != text:
                    continue
                found_.add(split[0], split[1], int(line_no[m]))
    for members, _, job in groups:
        matched = job.result() if job is not None else None
        if matched is not None:
            pieces, kept, columns = matched
            found_.add_many(pieces, line_no[members[kept]], columns)


def _match_group(
    content: pa.Array, members: np.ndarray, compiled: tuple[str, tuple[str, ...], int]
) -> tuple[tuple[str, ...], np.ndarray, list[pa.Array]] | None:
    """The lines of one group that its pattern matches, and their value columns (kernels)."""
    pattern, pieces, n_var = compiled
    try:
        found = pc.extract_regex(content.take(from_numpy(members)), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    ok = pc.is_valid(found)
    kept = ok.to_numpy(zero_copy_only=False)
    if not kept.any():
        return None
    return pieces, kept, [found.field(j).filter(ok) for j in range(n_var)]


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
                parts.append(f"(?P<v{n_var}>.*?)")  # the layout pins the spaces: no class needed
                pieces.append("")
                n_var += 1
            parts.append(re.escape(literal))
            pieces[-1] += literal
    parts.append(re.escape(spaces[-1]) + "$")
    pieces[-1] += spaces[-1]
    return "".join(parts), tuple(pieces), n_var


_MAX_DIGITS = 18  # every integer of up to 18 digits fits an int64, and so do their differences


def _column_kinds(texts: pa.Array, starts: np.ndarray) -> list[str]:
    """How each column is stored: ``int``, ``padN`` (N digits, zero-padded) or ``str``.

    An integer kind is chosen only when every value of the column prints back to the same
    digits: no sign, no leading zero (``int``), or all of one width (``padN``). Checked for
    all cells at once; a column is its run of cells from ``starts``.
    """
    if not len(starts):
        return []
    width = pc.binary_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    digits = pc.ascii_is_decimal(texts).to_numpy(zero_copy_only=False) & (width <= _MAX_DIGITS)
    lead_zero = pc.starts_with(texts, "0").to_numpy(zero_copy_only=False) & (width > 1)
    all_plain = np.logical_and.reduceat(digits & ~lead_zero, starts)
    all_digits = np.logical_and.reduceat(digits, starts)
    one_width = np.minimum.reduceat(width, starts) == np.maximum.reduceat(width, starts)
    return [
        "int" if p else f"pad{w}" if d and o else "str"
        for p, d, o, w in zip(
            all_plain.tolist(),
            all_digits.tolist(),
            one_width.tolist(),
            width[starts].tolist(),
            strict=True,
        )
    ]


def _newline_terminated(texts: pa.Array) -> bytes:
    """Every value followed by ``\\n``, concatenated (the ``strs`` stream), in one kernel."""
    if not len(texts):
        return b""
    joined = pc.binary_join_element_wise(texts, "", "\n")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    start = int(offsets[joined.offset])
    end = int(offsets[joined.offset + len(joined)])
    data: bytes = joined.buffers()[2].slice(start, end - start).to_pybytes()
    return data


_LIMITS = np.array([1 << 7, 1 << 15, 1 << 31], dtype=np.int64)
_WIDTHS = np.array([1, 2, 4, 8], dtype=np.int64)


def _widths(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Bytes (1, 2, 4 or 8) of the narrowest signed integer holding each ``low..high``."""
    need = np.maximum(high, -low - 1)  # a signed w-byte integer holds -2**(8w-1)..2**(8w-1)-1
    widths: np.ndarray = _WIDTHS[np.searchsorted(_LIMITS, need, side="right")]
    return widths


def _spans(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Bytes (1, 2, 4 or 8) of the narrowest integer with as many values as ``low..high``."""
    span = (high - low).astype(np.uint64)
    widths: np.ndarray = _WIDTHS[np.searchsorted(2 * _LIMITS.astype(np.uint64), span, side="right")]
    return widths


def _planes(values: np.ndarray, width: int, *, signed: bool = True) -> bytes:
    """``values`` as ``width``-byte little-endian integers, stored plane by plane.

    Plane *k* is byte *k* of every value: small numbers leave the high planes all zeros,
    which zstd all but erases, and the reader re-interleaves planes by slice assignment.
    """
    dtype = np.dtype(f"<{'i' if signed else 'u'}{width}")
    as_bytes = values.astype(dtype).view(np.uint8).reshape(len(values), width)
    return as_bytes.T.tobytes()


def _encode_ints(numbers: np.ndarray, lengths: np.ndarray) -> tuple[list[str], bytes]:
    """The stored form of every integer column (``MODE WIDTH : BASE``) and its bytes.

    A column is kept either as its values minus a base (``v``) or as differences from the
    previous value (``d``: counters, times, offsets), whichever needs fewer bytes per
    number; on a tie, the one with the smaller magnitudes. The base is 0 unless a nonzero
    one saves bytes: for ``v`` it centres the column's range on zero (a span of 65,535 fits
    two bytes), for ``d`` it is the first value. Vectorised over all columns at once: a
    segment can hold thousands of small columns. ``numbers`` holds the columns one after
    another, ``lengths`` their sizes.
    """
    if not len(lengths):
        return [], b""
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    low = np.minimum.reduceat(numbers, starts)
    high = np.maximum.reduceat(numbers, starts)
    width_v = _spans(low, high)
    centre = _widths(low, high) > width_v
    base_v = np.where(centre, low + (1 << (8 * np.minimum(width_v, 4) - 1)), 0)
    base_v = np.where(centre & (width_v == 8), low, base_v)
    deltas = np.diff(numbers, prepend=np.int64(0))
    firsts = numbers[starts]
    deltas[starts] = 0
    width_d = _widths(np.minimum.reduceat(deltas, starts), np.maximum.reduceat(deltas, starts))
    first_fits = _widths(firsts, firsts) <= width_d
    deltas[starts] = np.where(first_fits, firsts, 0)
    base_d = np.where(first_fits, 0, firsts)
    per_value = np.repeat(np.arange(len(lengths)), lengths)
    values = numbers - base_v[per_value]
    mag_d = np.add.reduceat(np.abs(deltas), starts)
    mag_v = np.add.reduceat(np.abs(values), starts)
    use_delta = (width_d < width_v) | ((width_d == width_v) & (mag_d < mag_v))
    stored = np.where(use_delta[per_value], deltas, values)
    width = np.where(use_delta, width_d, width_v)
    base = np.where(use_delta, base_d, base_v)
    encodings = [
        f"{'d' if d else 'v'}{w}:{b}"
        for d, w, b in zip(use_delta.tolist(), width.tolist(), base.tolist(), strict=True)
    ]
    # byte k of value j of column c goes to out_start[c] + k * len(c) + j
    sizes = lengths * width
    out_start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    row = np.arange(len(numbers)) - starts[per_value]
    as_bytes = stored.astype("<i8").view(np.uint8).reshape(len(stored), 8)
    for k in range(int(width.max())):
        keep = width[per_value] > k
        where = out_start[per_value] + k * lengths[per_value] + row
        out[where[keep]] = as_bytes[keep, k]
    return encodings, out.tobytes()


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
        with ThreadPoolExecutor(max_workers=_KERNEL_THREADS) as pool:
            ids, shapes = _mine(miner, content, pool)
            templates = miner.cluster_templates(ids)
            layout = shapes.result()
            _split_by_template(
                pc.fill_null(templates, ""),
                content,
                np.asarray(valid_idx),
                found,
                layout,
                pool=pool,
            )
    cells, starts = found.columns()
    kinds = _column_kinds(cells, starts)
    is_int = np.array([kind != "str" for kind in kinds], dtype=bool)
    lengths = np.diff(np.append(starts, len(cells)))
    cell_is_int = np.repeat(is_int, lengths)
    numbers = pc.cast(cells.filter(from_numpy(cell_is_int)), pa.int64())
    encodings, ints = _encode_ints(numbers.to_numpy(zero_copy_only=False), lengths[is_int])
    stored = iter(encodings)
    types = [kind if kind == "str" else f"{kind}:{next(stored)}" for kind in kinds]
    dictionary = [
        {"pieces": list(pieces), "types": types[first : first + len(pieces) - 1]}
        for pieces, first in zip(found.keys, found.first_column, strict=True)
    ]
    line_tpl = found.line_tpl
    line_bytes = int(_spans(np.zeros(1, np.int64), np.full(1, len(dictionary)))[0])
    verbatim = [lines[i] for i in range(n) if line_tpl[i] == 0]
    streams = {
        "dict": json.dumps({"templates": dictionary}, ensure_ascii=False).encode("utf-8"),
        "lines": _planes(line_tpl, line_bytes, signed=False),
        "ints": ints,
        "strs": _newline_terminated(cells.filter(from_numpy(~cell_is_int))),
        "raw": b"".join(line + b"\n" for line in verbatim),
    }
    header = {
        "format": SEGMENT_FORMAT,
        "lines": n,
        "verbatim": len(verbatim),
        "templates": len(dictionary),
        "ends_with_newline": ends_with_newline,
        "line_bytes": line_bytes,
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
        "lines": bytes(len(lines)),
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
        "line_bytes": 1,
    }
    return EncodedSegment(header, streams)
