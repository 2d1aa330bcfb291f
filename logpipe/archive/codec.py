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

from logpipe.archive.segment import SEGMENT_FORMAT, TS_STREAM, decode_segment, read_timestamps
from logpipe.arrowutil import from_numpy
from logpipe.parsing import TemplateMiner
from logpipe.parsing.masking import RE2_WHITESPACE, VAR
from logpipe.parsing.params import render_exact, split_exact, token_values

__all__ = [
    "EncodedSegment",
    "encode_segment",
    "encode_timestamps",
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
_FIRST_CHUNK_LINES = 1024  # a segment is mined in chunks while the next are premasked...
_MAX_CHUNK_LINES = 8192  # ...growing to this size (a kernel call has a fixed cost)


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
) -> tuple[pa.Array, pa.Array]:
    """Mine ``content`` in order: the cluster id and whitespace layout of every line.

    The miner is Python; the premask and the layout are Arrow kernels that release the
    GIL, so they run on ``pool`` chunk by chunk ahead of the miner.
    """
    chunks = []
    start, step = 0, _FIRST_CHUNK_LINES
    while start < len(content):  # growing chunks: the miner starts early, kernels stay big
        chunks.append(content.slice(start, step))
        start += step
        step = min(2 * step, _MAX_CHUNK_LINES)
    prepared = [pool.submit(_prepare_chunk, miner, chunk) for chunk in chunks]
    ids: list[pa.Array] = []
    shapes: list[pa.Array] = []
    for chunk, job in zip(chunks, prepared, strict=True):
        masked, shape = job.result()
        ids.append(miner.add_batch(chunk, premasked=masked))
        shapes.append(shape)
    layout = pc.dictionary_encode(pa.concat_arrays(shapes))
    return (ids[0] if len(ids) == 1 else pa.concat_arrays(ids)), layout


def _prepare_chunk(miner: TemplateMiner, chunk: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The miner's premask of ``chunk`` and each line's whitespace layout (kernels only).

    The premask only rewrites numbers inside tokens, so a line's layout is its premasked
    form's (a property test holds us to it), and only the distinct premasked forms, far
    fewer than the lines, need the layout pass.
    """
    distinct = pc.dictionary_encode(miner.premasked(chunk))
    return distinct, _line_shapes(distinct.dictionary).take(distinct.indices)


def _layout(content: pa.Array) -> pa.Array:
    """Each line's whitespace layout, dictionary-encoded (for lines mined elsewhere)."""
    return pc.dictionary_encode(_line_shapes(content))


def _layout_of_masks(masks: pa.Array) -> pa.Array:
    """Each line's layout, dictionary-encoded, from its premasked form (the premask only
    rewrites inside tokens, so the whitespace is the line's): one pass over the distinct
    forms, which a batch has few of."""
    encoded = masks if pa.types.is_dictionary(masks.type) else pc.dictionary_encode(masks)
    shapes = pc.dictionary_encode(_line_shapes(encoded.dictionary.cast(pa.string())))
    indices = shapes.indices.take(encoded.indices)
    return pa.DictionaryArray.from_arrays(indices, shapes.dictionary)


def _line_shapes(content: pa.Array) -> pa.Array:
    """Each line with its non-whitespace runs replaced by ``\x01``."""
    return pc.replace_substring_regex(content, f"{_NON_WS}+", "\x01")


def _split_by_template(
    templates: pa.Array,
    content: pa.Array,
    line_no: np.ndarray,
    found_: _Templates,
    layout: pa.Array,
    *,
    texts: list[str],
    pool: ThreadPoolExecutor,
) -> None:
    """Split every line into pieces and values.

    Lines are grouped by template *and* by their whitespace layout (one pass that keeps
    only the whitespace runs), so a group shares its pieces and only the values differ.
    Big groups are matched by one RE2 pattern each on ``pool`` (the kernels release the
    GIL); meanwhile small groups are split token by token in Python here, where a kernel's
    fixed cost would dominate. ``texts`` are the lines of ``content`` as Python strings.
    Lines that fit no pattern exactly stay verbatim.
    """
    tpl = pc.dictionary_encode(templates)
    template_texts = tpl.dictionary.to_pylist()
    shapes = layout.dictionary.to_pylist()
    key = tpl.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(shapes) + (
        layout.indices.to_numpy(zero_copy_only=False)
    )
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True]).tolist()
    small: list[tuple[np.ndarray, str, tuple[str, ...] | None]] = []
    big: list[tuple[np.ndarray, str, tuple[str, ...], Future[_Matched | None]]] = []
    for a, b in itertools.pairwise(bounds):
        members = order[a:b]
        group_key = int(key[members[0]])
        template = template_texts[group_key // len(shapes)]
        compiled = _layout_pattern(template, shapes[group_key % len(shapes)])
        if compiled is None:  # the layout and the template disagree (never seen)
            small.append((members, template, None))
        elif b - a > _SMALL_GROUP:
            job = pool.submit(_match_group, content, members, compiled)
            big.append((members, template, compiled[1], job))
        else:
            small.append((members, template, compiled[1]))
    for members, template, pieces in small:  # while the kernels run
        _split_lines(template, pieces, members, texts=texts, line_no=line_no, found_=found_)
    for members, template, pieces, job in big:
        matched = job.result()
        if matched is None:
            _split_lines(template, pieces, members, texts=texts, line_no=line_no, found_=found_)
            continue
        _, kept, columns = matched
        found_.add_many(pieces, line_no[members[kept]], columns)
        if not kept.all():  # never seen: the pattern and the token split agree
            _split_lines(
                template, pieces, members[~kept], texts=texts, line_no=line_no, found_=found_
            )


def _split_lines(
    template: str,
    pieces: tuple[str, ...] | None,
    members: np.ndarray,
    *,
    texts: list[str],
    line_no: np.ndarray,
    found_: _Templates,
) -> None:
    """Split the ``members`` lines one by one in Python (see :func:`_split_line`)."""
    for m in members.tolist():
        split = _split_line(template, pieces, texts[m])
        if split is not None:
            found_.add(split[0], split[1], int(line_no[m]))


def _split_line(
    template: str, pieces: tuple[str, ...] | None, line: str
) -> tuple[tuple[str, ...], list[str]] | None:
    """``line`` as pieces and values when it fits ``template`` exactly, else None.

    With the group's ``pieces`` known (the line's whitespace layout is the group's), only
    the tokens are looked at: literal tokens must match, and each variable is the shortest
    text before the next literal of its token, as the RE2 pattern's lazy groups pick it.
    """
    if pieces is None:
        split = split_exact(template, line)
        return split if split is not None and render_exact(*split) == line else None
    plan, fmt = _token_plan(template, pieces)
    tokens = line.split()
    if len(tokens) != len(plan):
        return None
    values: list[str] = []
    for parts, token in zip(plan, tokens, strict=True):
        if len(parts) == 1:
            if token != parts[0]:
                return None
            continue
        found = token_values(parts, token)
        if found is None:
            return None
        values.extend(found)
    return (pieces, values) if fmt.format(*values) == line else None


@lru_cache(maxsize=16384)
def _token_plan(template: str, pieces: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], ...], str]:
    """Each template token cut at its variables, and a format string of the pieces."""
    plan = tuple(tuple(token.split(VAR)) for token in template.split())
    fmt = "{}".join(piece.replace("{", "{{").replace("}", "}}") for piece in pieces)
    return plan, fmt


_Matched = tuple[tuple[str, ...], np.ndarray, list[pa.Array]]  # pieces, rows kept, columns


def _match_group(
    content: pa.Array, members: np.ndarray, compiled: tuple[str, tuple[str, ...], int]
) -> _Matched | None:
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
    whitespace around and between its tokens. Each value is a lazy ``.*?``: the layout
    pins the whitespace, so no character class is needed (a class costs RE2 more).
    """
    spaces = shape.split("\x01")
    tokens = template.split()
    if len(spaces) != len(tokens) + 1:
        return None
    pieces = [spaces[0]]
    for i, token in enumerate(tokens):
        if i:
            pieces[-1] += spaces[i]
        literals = token.split(VAR)
        pieces[-1] += literals[0]
        pieces.extend(literals[1:])
    pieces[-1] += spaces[-1]
    parts = ["(?s)^", re.escape(pieces[0])]
    for k, piece in enumerate(pieces[1:]):
        parts.append(f"(?P<v{k}>.*?)")
        parts.append(re.escape(piece))
    parts.append("$")
    return "".join(parts), tuple(pieces), len(pieces) - 1


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
    previous value (``d``: counters, times, offsets; ``z`` when some are negative, zigzag
    mapped), whichever needs fewer bytes per number; on a tie, the one with the smaller
    magnitudes. The base is 0 unless a nonzero
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
    # differences of both signs: zigzag (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) keeps the
    # high planes of small differences zero instead of 0xff for every negative one
    zigzag = (deltas << 1) ^ (deltas >> 63)
    width_z = _widths(np.zeros_like(starts), np.maximum.reduceat(zigzag, starts))
    # even when that takes a wider type: a plane of 0s and 1s costs zstd less than 0xffs
    use_zigzag = use_delta & (np.minimum.reduceat(deltas, starts) < 0)
    deltas = np.where(use_zigzag[per_value], zigzag, deltas)
    stored = np.where(use_delta[per_value], deltas, values)
    width = np.where(use_zigzag, width_z, np.where(use_delta, width_d, width_v))
    base = np.where(use_delta, base_d, base_v)
    mode = np.where(use_zigzag, "z", np.where(use_delta, "d", "v")).tolist()
    encodings = [f"{m}{w}:{b}" for m, w, b in zip(mode, width.tolist(), base.tolist(), strict=True)]
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


_TS_MIN = 0  # differences of timestamps in this range fit an int64, zigzagged too
_TS_MAX = (1 << 62) - 1


def encode_timestamps(timestamps: Sequence[int] | np.ndarray, n: int) -> tuple[str, bytes]:
    """The ``ts_type`` and bytes of the ``ts`` stream: ``n`` int64 ns timestamps.

    The stream is one integer column, so it is stored by the same machinery as the value
    columns (:func:`_encode_ints`): values or (zigzag) differences as byte planes, whichever
    is smaller. Sorted timestamps become small non-negative differences: a segment of lines
    a few milliseconds apart needs 2-4 bytes a line before zstd, far less after.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    if ts.shape != (n,):
        raise ValueError(f"{len(ts)} timestamps for {n} lines")
    if n and (int(ts.min()) < _TS_MIN or int(ts.max()) > _TS_MAX):
        raise ValueError("timestamps must lie in 0 .. 2**62-1 ns since the epoch (1970 to 2116)")
    if not n:
        return "int:v1:0", b""
    encodings, data = _encode_ints(ts, np.array([n], dtype=np.int64))
    return f"int:{encodings[0]}", data


def encode_segment(
    lines: Sequence[bytes],
    ends_with_newline: bool,
    miner: TemplateMiner,
    *,
    verify: bool = True,
    timestamps: Sequence[int] | np.ndarray | None = None,
    templates: pa.Array | None = None,
    premasked: pa.Array | None = None,
) -> EncodedSegment:
    """Encode the raw lines of one segment (the miner keeps learning across segments).

    With ``verify`` (the default) the segment is decoded and compared with its input before
    it is returned; a caller that verifies on its own (concurrently) passes False.
    ``timestamps`` (int64 ns, one per line) adds the ``ts`` stream; without them the segment
    is exactly what it was before timestamps existed (``logpipe compress`` writes none).

    ``templates`` (a string array, one per line, null where unknown): templates an
    upstream miner already found (the daemon's parse stage); ``miner`` is then not used.
    Mining is most of the encoding work, and the stream-wide templates serve as well: a
    line that does not fit its template exactly is stored verbatim as always, so any
    template, even a wrong one, keeps the segment lossless. ``premasked`` (optional, with
    ``templates``; dictionary-encoded best) is the same miner's premask of each line: the
    whitespace layouts are then read from its few distinct values instead of every line.
    """
    ts_part = None if timestamps is None else encode_timestamps(timestamps, len(lines))
    n = len(lines)
    valid_idx: list[int] = []  # the lines that are UTF-8 text (the rest stays verbatim)
    valid_texts: list[str] = []
    for i, raw in enumerate(lines):
        try:
            valid_texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        valid_idx.append(i)
    content = pa.array(valid_texts, pa.string())
    found = _Templates(n)
    if valid_idx:
        with ThreadPoolExecutor(max_workers=_KERNEL_THREADS) as pool:
            if templates is None:
                ids, layout = _mine(miner, content, pool)
                line_templates = miner.cluster_templates(ids)
            else:
                if len(templates) != n:
                    raise ValueError(f"{len(templates)} templates for {n} lines")
                picked = templates if len(valid_idx) == n else templates.take(valid_idx)
                line_templates = picked.cast(pa.string())
                if premasked is not None and len(premasked) == n:
                    masks = premasked if len(valid_idx) == n else premasked.take(valid_idx)
                    layout = _layout_of_masks(masks)
                else:
                    layout = _layout(content)
            _split_by_template(
                pc.fill_null(line_templates, ""),
                content,
                np.asarray(valid_idx),
                found,
                layout,
                texts=valid_texts,
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
        "dict": json.dumps(
            {"templates": dictionary}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8"),
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
    _add_timestamps(header, streams, ts_part)
    segment = EncodedSegment(header, streams)
    if verify and not segment_is_exact(segment, lines, ends_with_newline, timestamps):
        # never expected; if it ever happens the segment is stored verbatim, not lost
        return verbatim_segment(lines, ends_with_newline, timestamps)
    return segment


def _add_timestamps(
    header: dict[str, Any], streams: dict[str, bytes], ts_part: tuple[str, bytes] | None
) -> None:
    if ts_part is not None:
        header["ts_type"] = ts_part[0]
        streams[TS_STREAM] = ts_part[1]


def segment_is_exact(
    segment: EncodedSegment,
    lines: Sequence[bytes],
    ends_with_newline: bool,
    timestamps: Sequence[int] | np.ndarray | None = None,
) -> bool:
    """Whether ``segment`` decodes to exactly the lines (and timestamps) it was made from."""
    original = b"".join(line + b"\n" for line in lines)
    if lines and not ends_with_newline:
        original = original[:-1]
    if decode_segment(segment.header, segment.streams) != original:
        return False
    if timestamps is None:
        return True
    decoded = read_timestamps(segment.header, segment.streams)
    expected: list[int] = np.asarray(timestamps, dtype=np.int64).tolist()
    return decoded == expected


def verbatim_segment(
    lines: Sequence[bytes],
    ends_with_newline: bool,
    timestamps: Sequence[int] | np.ndarray | None = None,
) -> EncodedSegment:
    streams = {
        "dict": b'{"templates":[]}',
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
    if timestamps is not None:
        _add_timestamps(header, streams, encode_timestamps(timestamps, len(lines)))
    return EncodedSegment(header, streams)
