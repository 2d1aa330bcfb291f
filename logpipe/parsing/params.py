"""Extract the variable values of a message under its template.

Why a regex per template: the miner keeps templates, not per-line positions, and a template
only generalises over time, so values are read off the final template. ``<*>`` matches
lazily, runs of whitespace in the template match any whitespace run in the message, and the
match is anchored at both ends; compiled patterns are cached per template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy
from logpipe.parsing.masking import RE2_WHITESPACE, VAR

__all__ = [
    "extract_params",
    "extract_params_batch",
    "render_exact",
    "split_exact",
    "template_regex",
    "token_values",
]

_WS = re.compile(r"\s+")


@lru_cache(maxsize=8192)
def template_regex(template: str) -> re.Pattern[str]:
    """The anchored pattern that matches messages of ``template`` and captures its values."""
    pieces = template.split(VAR)
    body = "(.*?)".join(_WS.sub(r"\\s+", re.escape(p).replace("\\ ", " ")) for p in pieces)
    return re.compile(r"\s*" + body + r"\s*", re.DOTALL)


@lru_cache(maxsize=8192)
def _template_tokens(template: str) -> tuple[tuple[str, ...], ...]:
    """Each whitespace token of a template, cut at its variables."""
    return tuple(tuple(token.split(VAR)) for token in template.split())


_WS_SPLIT = re.compile(r"(\s+)")


def _split_with_plan(
    plan: tuple[tuple[str, ...], ...], line: str
) -> tuple[tuple[str, ...], list[str]] | None:
    """Pieces (with the line's own whitespace) and values, when the tokens align; else None.

    Each value is the shortest text before the next literal of its token, which is what
    the template regex's lazy groups pick when the tokens align. Joining the pieces and the
    values (:func:`render_exact`) gives ``line`` back exactly.
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
        return ((line,), []) if not plan else None
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
            found = token_values(literal, tok)
            if found is None:
                return None
            values.extend(found)
            pieces[-1] += literal[0]
            pieces.extend(literal[1:])
        if i < last:
            pieces[-1] += seps[i]
    pieces[-1] += trail
    return tuple(pieces), values


def token_values(parts: tuple[str, ...], token: str) -> list[str] | None:
    """The values of ``token`` against a template token cut at its variables, or None.

    ``parts`` are the token's literal texts around its (one or more) variables. Each value
    is the shortest text before the next literal, which is what a lazy ``(.*?)`` regex
    group picks when the tokens align.
    """
    head, tail = parts[0], parts[-1]
    if len(token) < len(head) + len(tail) or not (token.startswith(head) and token.endswith(tail)):
        return None
    middle = token[len(head) : len(token) - len(tail)]
    values = []
    pos = 0
    for literal in parts[1:-1]:
        found = middle.find(literal, pos)
        if found < 0:
            return None
        values.append(middle[pos:found])
        pos = found + len(literal)
    values.append(middle[pos:])
    return values


def split_exact(template: str, line: str) -> tuple[tuple[str, ...], list[str]] | None:
    """``line`` as the literal pieces of ``template`` (its own whitespace kept) and values."""
    return _split_with_plan(_template_tokens(template), line)


def render_exact(pieces: Sequence[str], values: Sequence[str]) -> str:
    """The inverse of :func:`split_exact`."""
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(value)
        out.append(piece)
    return "".join(out)


def _params_by_tokens(template: tuple[tuple[str, ...], ...], content: str) -> list[str] | None:
    """The values when message and template align token by token, else None (regex decides).

    Why: compiling a regex per template costs more than matching a few lines with it, and
    most messages have exactly the template's tokens.
    """
    split = _split_with_plan(template, content)
    return None if split is None else split[1]


def extract_params(template: str, content: str) -> list[str]:
    """The values of ``template``'s variables in ``content``; ``[]`` if it does not fit."""
    if VAR not in template:
        return []
    quick = _params_by_tokens(_template_tokens(template), content)
    if quick is not None:
        return quick
    m = template_regex(template).fullmatch(content)
    if m is None:
        return []
    return list(m.groups())


_LIST = pa.list_(pa.string())
_RE2_WS = f"[{RE2_WHITESPACE}]"  # Python's \s, which RE2's \s is not
_RE2_WS_RUN = (_RE2_WS + "+").replace("\\", "\\\\")  # a re.sub replacement string
_SMALL_GROUP = 48


@lru_cache(maxsize=8192)
def _re2_pattern(template: str) -> str | None:
    """The template's pattern in RE2 syntax with named groups, or None if RE2 rejects it."""
    pieces = template.split(VAR)
    body = "".join(
        (f"(?P<p{i - 1}>.*?)" if i else "") + _WS.sub(_RE2_WS_RUN, re.escape(p).replace("\\ ", " "))
        for i, p in enumerate(pieces)
    )
    pattern = rf"(?s)^{_RE2_WS}*{body}{_RE2_WS}*$"
    try:
        pc.extract_regex(pa.array([""], pa.string()), pattern=pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pattern


def _params_one_template(template: str, content: pa.Array) -> pa.Array:
    """list<string> params of every message in ``content`` under one template."""
    n = len(content)
    if VAR not in template:
        return pa.array([[]] * n, _LIST)
    pattern = _re2_pattern(template)
    if pattern is None:  # a template RE2 cannot express: the exact Python path
        return pa.array([extract_params(template, c or "") for c in content.to_pylist()], _LIST)
    matched = pc.extract_regex(content, pattern=pattern)
    k = matched.type.num_fields
    valid = pc.is_valid(matched).to_numpy(zero_copy_only=False)
    if k == 0:
        return pa.array([[]] * n, _LIST)
    lengths = np.where(valid, k, 0)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    fields = [matched.field(i) for i in range(k)]
    # row-major interleave of the k capture columns, for the rows that matched
    rows = np.flatnonzero(valid)
    stacked = pa.concat_arrays([f.take(from_numpy(rows)) for f in fields])
    order = (np.arange(k)[None, :] * len(rows) + np.arange(len(rows))[:, None]).ravel()
    flat = stacked.take(from_numpy(order))
    return pa.ListArray.from_arrays(from_numpy(offsets), flat)


def extract_params_batch(
    templates: Mapping[int, str | None], cluster_ids: pa.Array, content: pa.Array
) -> pa.Array:
    """Vectorised :func:`extract_params` over a batch: ``list<string>`` per message.

    Why per template: each template is one RE2 pattern, so the messages of a template are
    matched in one ``extract_regex`` call in C++; the per-template results are stitched back
    into batch order with one ``take``. Unknown ids (evicted clusters) and messages that no
    longer fit their template get ``[]``, as :func:`extract_params` does.
    """
    n = len(cluster_ids)
    if n == 0:
        return pa.array([], _LIST)
    ids = cluster_ids.to_numpy(zero_copy_only=False)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    ends = np.r_[starts[1:], n]
    parts: list[pa.Array] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        template = templates.get(int(sorted_ids[a]))
        rows = order[a:b]
        if template is None:
            parts.append(pa.array([[]] * (b - a), _LIST))
            continue
        sub = content.take(from_numpy(rows))
        if b - a < _SMALL_GROUP:
            # a handful of rows: one Python regex per row beats the kernels' fixed costs
            parts.append(
                pa.array([extract_params(template, c or "") for c in sub.to_pylist()], _LIST)
            )
        else:
            parts.append(_params_one_template(template, sub))
    grouped = pa.concat_arrays(parts)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    return grouped.take(from_numpy(inverse))
