"""Running a LogQL pipeline (``|= "x" | json | status >= 500 | line_format ...``) over lines.

The unit of work is one stream's rows in time order: timestamps, lines, and one label set
per row (parsers add labels per line). Line filters, label matchers and ``decolorize`` run
as Arrow kernels over all rows at once; parsers, numeric label filters and templates run
per row in Python, because each line's JSON or logfmt is its own.

Semantics follow Loki's documentation:

* line filters with ``or`` keep a line matching any value; negative filters drop a line
  matching any value; ``|~`` is an unanchored RE2 search; ``|>`` matches a pattern;
* parsers add labels; a key that already names a *stream* label gets ``_extracted``; a line
  the parser cannot read gets ``__error__`` (``JSONParserErr``, ``LogfmtParserErr``) and
  ``__error_details__``, and stays;
* a numeric, duration or byte filter whose label does not convert keeps the line and adds
  ``__error__="LabelFilterErr"``; a missing label reads as the empty string.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast
from logpipe.logql.gotemplate import TemplateError, compile_template
from logpipe.logql.units import parse_bytes, parse_duration

__all__ = ["Rows", "labels_set_by", "run_pipeline", "sanitize_label"]

ERROR = "__error__"
ERROR_DETAILS = "__error_details__"


class Rows:
    """One stream's rows: what every stage reads and rewrites.

    Per-row label sets are made only when a stage needs them (a parser, a label stage):
    until then every row has the stream's labels, and line filters and range counts run
    on arrays alone.
    """

    def __init__(self, stream: Mapping[str, str], ts: list[int], lines: list[str]) -> None:
        self.stream = stream
        self.ts = ts
        self.lines = lines
        self._labels: list[dict[str, str]] | None = None

    @classmethod
    def of(cls, stream: Mapping[str, str], ts: Sequence[int], lines: Sequence[str]) -> Rows:
        return cls(stream, list(ts), list(lines))

    @property
    def labels(self) -> list[dict[str, str]]:
        if self._labels is None:
            self._labels = [dict(self.stream) for _ in self.lines]
        return self._labels

    @labels.setter
    def labels(self, value: list[dict[str, str]]) -> None:
        self._labels = value

    @property
    def uniform(self) -> bool:
        """Whether every row still has just the stream's labels."""
        return self._labels is None

    def keep(self, mask: Sequence[bool]) -> None:
        self.ts = [t for t, k in zip(self.ts, mask, strict=True) if k]
        self.lines = [x for x, k in zip(self.lines, mask, strict=True) if k]
        if self._labels is not None:
            self._labels = [x for x, k in zip(self._labels, mask, strict=True) if k]

    def __len__(self) -> int:
        return len(self.lines)


# ------------------------------------------------------------------ line filters
def kernel_mask(lines: pa.Array, filters: Sequence[ast.LineFilter]) -> pa.Array:
    """Which lines (string or binary) pass every substring/regex filter, as Arrow kernels.

    Values of one filter are ORed (``|= "a" or "b"``); a negative filter drops a line any
    value matches. ``ip()`` and pattern values are not for this function.
    """
    keep = None
    for f in filters:
        hit = None
        for value in f.values:
            assert isinstance(value, str)
            if f.op in ("|=", "!="):
                one = pc.match_substring(lines, pattern=value)
            else:
                one = pc.match_substring_regex(lines, pattern=value)
            hit = one if hit is None else pc.or_(hit, one)
        if f.op in ("!=", "!~"):
            hit = pc.invert(hit)
        keep = hit if keep is None else pc.and_(keep, hit)
    return pc.fill_null(keep, False)


_IP_CANDIDATE = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]+")


@lru_cache(maxsize=256)
def _ip_range(spec: str) -> Callable[[str], bool]:
    """A membership test for ``ip("...")``: an address, a CIDR or ``first-last``."""
    if "-" in spec:
        lo, hi = (ipaddress.ip_address(p.strip()) for p in spec.split("-", 1))

        def within(text: str) -> bool:
            ip = _addr(text)
            return ip is not None and ip.version == lo.version and lo <= ip <= hi  # type: ignore[operator]

        return within
    net = ipaddress.ip_network(spec.strip(), strict=False)
    return lambda a: (ip := _addr(a)) is not None and ip.version == net.version and ip in net


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _line_has_ip(line: str, spec: str) -> bool:
    member = _ip_range(spec)
    return any(member(c) for c in _IP_CANDIDATE.findall(line))


def _line_filter(rows: Rows, stage: ast.LineFilter) -> None:
    if not len(rows):
        return
    if stage.op in ("|=", "!=", "|~", "!~") and all(isinstance(v, str) for v in stage.values):
        mask = kernel_mask(pa.array(rows.lines, pa.string()), [stage])
        rows.keep(mask.to_pylist())
        return
    hit = [False] * len(rows)
    for value in stage.values:
        if isinstance(value, ast.IpValue):
            one = [_line_has_ip(x, value.cidr) for x in rows.lines]
        elif stage.op in ("|~", "!~"):
            rx = _compiled(value)
            one = [rx.search(x) is not None for x in rows.lines]
        elif stage.op in ("|=", "!="):
            one = [value in x for x in rows.lines]
        else:
            matcher = compile_pattern(value)
            one = [matcher(x) is not None for x in rows.lines]
        hit = [a or b for a, b in zip(hit, one, strict=True)]
    rows.keep(hit if stage.op in ("|=", "|~", "|>") else [not h for h in hit])


# ------------------------------------------------------------------ pattern expressions
_PATTERN_PART = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Callable[[str], dict[str, str] | None]:
    """Loki's pattern matcher: literals located left to right, captures between them.

    A capture takes the text up to the next literal's first occurrence (the rest of the
    line if it is last); a literal that is not found means no match. ``<_>`` captures
    nothing. Text after a final literal is allowed.
    """
    parts: list[tuple[str, str]] = []  # ("lit", text) / ("cap", name)
    pos = 0
    for m in _PATTERN_PART.finditer(pattern):
        if m.start() > pos:
            parts.append(("lit", pattern[pos : m.start()]))
        parts.append(("cap", m.group(1)))
        pos = m.end()
    if pos < len(pattern):
        parts.append(("lit", pattern[pos:]))

    def match(line: str) -> dict[str, str] | None:
        out: dict[str, str] = {}
        at = 0
        pending: str | None = None
        for kind, text in parts:
            if kind == "cap":
                pending = text
                continue
            found = line.find(text, at)
            if found < 0 or (pending is None and found != at):
                return None
            if pending is not None and pending != "_":
                out[pending] = line[at:found]
            pending = None
            at = found + len(text)
        if pending is not None and pending != "_":
            out[pending] = line[at:]
        return out

    return match


# ------------------------------------------------------------------ parsers
_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def labels_set_by(stage: ast.Stage) -> frozenset[str] | None:
    """The label names ``stage`` can add to a line, or None when it can add any name.

    Why: a query that groups by a label no stage sets (and no stream has) groups nothing;
    the NL side uses this to find such queries without running them. ``json``, ``logfmt``
    and ``unpack`` without named extractions add whatever keys the line holds (None);
    a ``regexp`` its named groups, a ``pattern`` its named captures, ``label_format`` its
    targets; filters and formatting add none.
    """
    if isinstance(stage, (ast.JsonParser, ast.LogfmtParser)):
        if not stage.extractions:
            return None
        return frozenset(e.label for e in stage.extractions)
    if isinstance(stage, ast.UnpackParser):
        return None
    if isinstance(stage, ast.RegexpParser):
        try:
            return frozenset(_compiled(stage.pattern).groupindex)
        except re.error:
            return frozenset()
    if isinstance(stage, ast.PatternParser):
        return frozenset(m.group(1) for m in _PATTERN_PART.finditer(stage.pattern)) - {"_"}
    if isinstance(stage, ast.LabelFormat):
        return frozenset(item.dst for item in stage.items)
    return frozenset()


def sanitize_label(key: str) -> str:
    """A parsed key as a label name, as Loki makes it: bad characters become ``_``."""
    name = _INVALID_LABEL_CHAR.sub("_", key)
    if not name or name[0].isdigit():
        name = "_" + name
    return name


def _add(labels: dict[str, str], stream: Mapping[str, str], key: str, value: str) -> None:
    name = sanitize_label(key)
    if name in stream:
        name += "_extracted"
    labels[name] = value


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _flatten(prefix: str, obj: Mapping[str, object], out: list[tuple[str, str]]) -> None:
    for key, value in obj.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        elif isinstance(value, list):
            continue  # Loki's json parser skips arrays unless asked for by expression
        else:
            out.append((name, _json_text(value)))


def _load_json(line: str) -> object:
    return json.loads(line, parse_float=str, parse_int=str, parse_constant=str)


_JSON_PATH = re.compile(
    r'\s*(?:\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[\s*(\d+)\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\])'
)


def _json_path(obj: object, expression: str) -> object:
    pos = 0
    while pos < len(expression):
        m = _JSON_PATH.match(expression, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        key = m.group(1) if m.group(1) is not None else m.group(3)
        if key is not None:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(key.replace('\\"', '"'))
        else:
            if not isinstance(obj, list) or int(m.group(2)) >= len(obj):
                return None
            obj = obj[int(m.group(2))]
    return obj


def _json(rows: Rows, stage: ast.JsonParser) -> None:
    for i, line in enumerate(rows.lines):
        labels = rows.labels[i]
        try:
            obj = _load_json(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            labels[ERROR] = "JSONParserErr"
            labels[ERROR_DETAILS] = str(exc)
            continue
        if stage.extractions:
            for e in stage.extractions:
                value = _json_path(obj, e.expression if e.expression is not None else e.label)
                if value is not None:
                    _add(labels, rows.stream, e.label, _json_text(value))
        else:
            found: list[tuple[str, str]] = []
            _flatten("", obj, found)
            for key, value in found:
                _add(labels, rows.stream, key, value)


_LOGFMT = re.compile(r'\s*([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?')


def _logfmt_pairs(line: str, strict: bool) -> tuple[list[tuple[str, str | None]], str | None]:
    """The line's ``key=value`` pairs, and the error that stopped a strict parse.

    Lenient (the default) skips what it cannot read and goes on; ``--strict`` stops at the
    first malformed token, keeping the pairs read before it.
    """
    pairs: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(line):
        if not line[pos:].strip():
            break
        m = _LOGFMT.match(line, pos)
        if m is None or m.end() == pos:
            if strict:
                return pairs, f"logfmt syntax error at pos {pos + 1}: unexpected {line[pos]!r}"
            pos += 1
            continue
        raw = m.group(2)
        value: str | None
        if raw is None:
            value = None
        elif raw.startswith('"'):
            try:
                value = json.loads(raw)
            except ValueError:
                if strict:
                    return pairs, f"logfmt syntax error at pos {m.start(2) + 1}: bad quoted value"
                value = raw.strip('"')
        else:
            value = raw
        pairs.append((m.group(1), value))
        pos = m.end()
    return pairs, None


def _logfmt(rows: Rows, stage: ast.LogfmtParser) -> None:
    wanted = {e.expression or e.label: e.label for e in stage.extractions}
    for i, line in enumerate(rows.lines):
        labels = rows.labels[i]
        pairs, error = _logfmt_pairs(line, stage.strict)
        for key, value in pairs:
            if value is None and not stage.keep_empty:
                continue
            if wanted:
                if key in wanted:
                    _add(labels, rows.stream, wanted[key], value or "")
            else:
                _add(labels, rows.stream, key, value or "")
        if error is not None:
            labels[ERROR] = "LogfmtParserErr"
            labels[ERROR_DETAILS] = error


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(rows: Rows, stage: ast.RegexpParser) -> None:
    rx = _compiled(stage.pattern)
    for i, line in enumerate(rows.lines):
        m = rx.search(line)
        if m:
            for key, value in m.groupdict().items():
                if value is not None:
                    _add(rows.labels[i], rows.stream, key, value)


def _pattern(rows: Rows, stage: ast.PatternParser) -> None:
    match = compile_pattern(stage.pattern)
    for i, line in enumerate(rows.lines):
        found = match(line)
        if found:
            for key, value in found.items():
                _add(rows.labels[i], rows.stream, key, value)


def _unpack(rows: Rows) -> None:
    for i, line in enumerate(rows.lines):
        labels = rows.labels[i]
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            labels[ERROR] = "JSONParserErr"
            labels[ERROR_DETAILS] = str(exc)
            continue
        for key, value in obj.items():
            if not isinstance(value, str):
                continue
            if key == "_entry":
                rows.lines[i] = value
            else:
                _add(labels, rows.stream, key, value)


_ANSI = r"\x1b\[[0-9;]*[A-Za-z]"


def _decolorize(rows: Rows) -> None:
    if len(rows):
        arr = pc.replace_substring_regex(pa.array(rows.lines, pa.string()), _ANSI, "")
        rows.lines = arr.to_pylist()


# ------------------------------------------------------------------ label filters
_NUMERIC = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?(Inf|inf|NaN|nan)")


def _compare(op: str, a: float, b: float) -> bool:
    return {
        ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b, "==": a == b, "=": a == b,
        "!=": a != b,
    }[op]  # fmt: skip


def _convert(node: ast.LabelFilter, value: str) -> float:
    if isinstance(node, ast.DurationFilter):
        return float(parse_duration(value.strip()))
    if isinstance(node, ast.BytesFilter):
        return float(parse_bytes(value.strip().replace(" ", "")))
    text = value.strip()
    if not _NUMERIC.fullmatch(text):
        raise ValueError(f"strconv.ParseFloat: parsing {value!r}: invalid syntax")
    return float(text)


def _filter_mask(node: ast.LabelFilter, rows: Rows) -> list[bool]:
    """Which rows pass ``node``; conversion failures pass and get ``LabelFilterErr``."""
    if isinstance(node, ast.AndFilter):
        left = _filter_mask(node.left, rows)
        right = _filter_mask(node.right, rows)
        return [a and b for a, b in zip(left, right, strict=True)]
    if isinstance(node, ast.OrFilter):
        left = _filter_mask(node.left, rows)
        right = _filter_mask(node.right, rows)
        return [a or b for a, b in zip(left, right, strict=True)]
    if isinstance(node, ast.StringFilter):
        m = node.matcher
        return m.match_values([labels.get(m.name, "") for labels in rows.labels])
    if isinstance(node, ast.IpFilter):
        member = _ip_range(node.cidr)
        hits = [member(labels.get(node.label, "").strip()) for labels in rows.labels]
        return [not h for h in hits] if node.negate else hits
    assert isinstance(node, ast.NumberFilter | ast.DurationFilter | ast.BytesFilter)
    target = float(node.value if isinstance(node, ast.NumberFilter) else
                   node.nanos if isinstance(node, ast.DurationFilter) else node.size)  # fmt: skip
    out = []
    for labels in rows.labels:
        try:
            value = _convert(node, labels.get(node.label, ""))
        except ValueError as exc:
            if ERROR not in labels:
                labels[ERROR] = "LabelFilterErr"
                labels[ERROR_DETAILS] = str(exc)
            out.append(True)
            continue
        out.append(_compare(node.op, value, target))
    return out


# ------------------------------------------------------------------ formatting
def _line_format(rows: Rows, stage: ast.LineFormat) -> None:
    template = compile_template(stage.template)
    for i, labels in enumerate(rows.labels):
        try:
            rows.lines[i] = template.render(labels, rows.lines[i], rows.ts[i])
        except TemplateError as exc:
            labels[ERROR] = "TemplateFormatErr"
            labels[ERROR_DETAILS] = str(exc)


def _label_format(rows: Rows, stage: ast.LabelFormat) -> None:
    for i, labels in enumerate(rows.labels):
        updates: dict[str, str] = {}
        removed: set[str] = set()
        for item in stage.items:
            if item.is_template:
                try:
                    updates[item.dst] = compile_template(item.src).render(
                        labels, rows.lines[i], rows.ts[i]
                    )
                except TemplateError as exc:
                    labels[ERROR] = "TemplateFormatErr"
                    labels[ERROR_DETAILS] = str(exc)
            else:
                updates[item.dst] = labels.get(item.src, "")
                if item.src != item.dst:
                    removed.add(item.src)
        for name in removed - updates.keys():
            labels.pop(name, None)
        labels.update(updates)


def _item_hits(item: str | LabelMatcher, labels: Mapping[str, str]) -> tuple[str, bool]:
    if isinstance(item, str):
        return item, True
    return item.name, _value_matches(item, labels.get(item.name, ""))


@lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})\\Z", re.DOTALL)


def _value_matches(m: LabelMatcher, value: str) -> bool:
    if m.op is MatchOp.EQ:
        return value == m.value
    if m.op is MatchOp.NE:
        return value != m.value
    hit = _anchored(m.value).match(value) is not None
    return hit if m.op is MatchOp.RE else not hit


def _drop(rows: Rows, stage: ast.Drop) -> None:
    for labels in rows.labels:
        for item in stage.items:
            name, hit = _item_hits(item, labels)
            if hit and name in labels:
                del labels[name]


def _keep(rows: Rows, stage: ast.Keep) -> None:
    for i, labels in enumerate(rows.labels):
        kept = {}
        for item in stage.items:
            name, hit = _item_hits(item, labels)
            if hit and name in labels:
                kept[name] = labels[name]
        rows.labels[i] = kept


def run_pipeline(rows: Rows, stages: Sequence[ast.Stage]) -> Rows:
    """Apply ``stages`` in order to ``rows`` (rewritten in place and returned)."""
    for stage in stages:
        if not len(rows):
            break
        if isinstance(stage, ast.LineFilter):
            _line_filter(rows, stage)
        elif isinstance(stage, ast.JsonParser):
            _json(rows, stage)
        elif isinstance(stage, ast.LogfmtParser):
            _logfmt(rows, stage)
        elif isinstance(stage, ast.RegexpParser):
            _regexp(rows, stage)
        elif isinstance(stage, ast.PatternParser):
            _pattern(rows, stage)
        elif isinstance(stage, ast.UnpackParser):
            _unpack(rows)
        elif isinstance(stage, ast.Decolorize):
            _decolorize(rows)
        elif isinstance(stage, ast.LabelFilterStage):
            rows.keep(_filter_mask(stage.filter, rows))
        elif isinstance(stage, ast.LineFormat):
            _line_format(rows, stage)
        elif isinstance(stage, ast.LabelFormat):
            _label_format(rows, stage)
        elif isinstance(stage, ast.Drop):
            _drop(rows, stage)
        elif isinstance(stage, ast.Keep):
            _keep(rows, stage)
    return rows


def filter_rows(rows: Rows, filters: Sequence[ast.LabelFilter]) -> Iterator[int]:
    """Indices of rows that pass every filter (the label filters after ``unwrap``)."""
    mask = [True] * len(rows)
    for f in filters:
        mask = [a and b for a, b in zip(mask, _filter_mask(f, rows), strict=True)]
    return (i for i, keep in enumerate(mask) if keep)
