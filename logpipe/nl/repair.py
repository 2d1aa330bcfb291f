"""Light, named repairs of model output that is almost LogQL.

Why light: a small model's near misses are mechanical (a missing ``)``, ``[1 hour]``,
``app=`` for ``application=``, single quotes, a value one letter off); fixing those is
cheap and safe because every repaired query is parsed and validated again by our parser,
and the name of every repair applied is reported. Anything deeper is rejected rather than
guessed.

Two kinds:

* **text repairs** (:data:`TEXT_REPAIRS`) make unparseable text parse: quotes, ``==`` in a
  selector, range spelling, unbalanced brackets and strings, a missing range, an unknown
  ``*_over_time`` name, an ``unwrap`` in a function that counts lines, a capture name a
  ``regexp`` repeats, a ``regexp`` that names no capture;
* **schema repairs** (:func:`repair_labels`) change selector matchers of a parsed query to
  label names and values the store has, when one is close enough;
  :func:`count_of_unset_groups` reads ``count(sum by (x) (...))`` as ``sum(...)`` when
  nothing in the store or the query sets ``x``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast
from logpipe.logql.pipeline import labels_set_by
from logpipe.logql.units import parse_duration
from logpipe.nl.tree import map_matchers, map_nodes, walk

__all__ = [
    "TEXT_REPAIRS",
    "balance",
    "count_of_unset_groups",
    "drop_captureless_regexp",
    "drop_unwrap_errors",
    "extract_query",
    "fix_range_spelling",
    "question_range",
    "range_from_question",
    "repair_labels",
    "strings_masked",
    "window_from_question",
    "without_time_span",
]

_FENCE = re.compile(r"```(?:logql|promql|sql|text)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(?:A|Answer|LogQL|Query|LogQL query)\s*:\s*", re.IGNORECASE)
_UNITS = {"s": "s", "sec": "s", "second": "s", "m": "m", "min": "m", "minute": "m", "h": "h",
          "hr": "h", "hour": "h", "d": "d", "day": "d", "w": "w", "week": "w"}  # fmt: skip
_RANGE_WORDS = re.compile(
    r"\[\s*(\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)\s*\]",
    re.IGNORECASE,
)
_QUESTION_SPAN = re.compile(
    r"\b(?:(\d+)|an?|one)\s*(seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?)\b"
    r"|\b(?:last|past|previous)\s+(second|minute|hour|day|week)\b",
    re.IGNORECASE,
)


def extract_query(raw: str) -> str:
    """The query in a model's reply: inside a code fence if there is one, without an
    ``A:``/``LogQL:`` prefix, up to the next question or blank line, on one line."""
    text = raw.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    text = _PREFIX.sub("", text)
    kept: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if kept:
                break
            continue
        if re.match(r"^\s*(Q|Question)\s*:", line) and kept:
            break
        kept.append(line.strip())
    text = " ".join(kept).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "`'":
        text = text[1:-1].strip()
    return text


def strings_masked(text: str) -> str:
    """``text`` with the inside of string literals replaced by ``_`` (same length), so
    bracket counting ignores brackets in strings. An unterminated string runs to the end."""
    out = []
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
                out.append("_")
            elif ch == "\\" and quote == '"':
                escaped = True
                out.append("_")
            elif ch == quote:
                quote = ""
                out.append(ch)
            else:
                out.append("_")
        else:
            if ch in '"`':
                quote = ch
            out.append(ch)
    return "".join(out)


def balance(text: str) -> str | None:
    """Close an unterminated string and unclosed ``{ ( [``; drop closers that close
    nothing. None when there was nothing to do."""
    masked = strings_masked(text)
    fixed = text
    quotes = [c for c in masked if c in '"`']
    if len(quotes) % 2:
        fixed += quotes[-1]
        masked += quotes[-1]
    pairs = {"}": "{", ")": "(", "]": "["}
    closing = {v: k for k, v in pairs.items()}
    stack: list[str] = []
    drop: list[int] = []
    for i, ch in enumerate(masked):
        if ch in closing:
            stack.append(ch)
        elif ch in pairs:
            if stack and stack[-1] == pairs[ch]:
                stack.pop()
            else:
                drop.append(i)
    for i in reversed(drop):
        fixed = fixed[:i] + fixed[i + 1 :]
    fixed += "".join(closing[c] for c in reversed(stack))
    return fixed if fixed != text else None


def fix_range_spelling(text: str) -> str | None:
    """``[1 hour]`` -> ``[1h]``, ``[30 mins]`` -> ``[30m]``, ``[5 m]`` -> ``[5m]``."""

    def unit(m: re.Match[str]) -> str:
        word = m.group(2).lower().rstrip("s") or "s"
        return f"[{m.group(1)}{_UNITS.get(word, _UNITS.get(m.group(2).lower(), 'm'))}]"

    fixed = _RANGE_WORDS.sub(unit, text)
    return fixed if fixed != text else None


def _single_quotes(text: str) -> str | None:
    """``'value'`` -> ``"value"`` outside double-quoted strings."""
    masked = strings_masked(text)
    out = list(text)
    i = 0
    changed = False
    while i < len(masked):
        if masked[i] == "'":
            end = masked.find("'", i + 1)
            if end == -1:
                break
            body = text[i + 1 : end].replace("\\", "\\\\").replace('"', '\\"')
            out[i : end + 1] = ['"' + body + '"'] + [""] * (end - i)
            changed = True
            i = end + 1
        else:
            i += 1
    return "".join(out) if changed else None


def _selector_double_equals(text: str) -> str | None:
    """``{app=="x"}`` -> ``{app="x"}`` (PromQL habits)."""
    fixed = re.sub(r'(\{[^{}]*?\w)\s*==\s*(")', r"\1=\2", text)
    return fixed if fixed != text else None


_LOOKBACK = re.compile(r"\b(?:last|past|previous|within|during|over|in)\s+(?:the\s+)?$",
                       re.IGNORECASE)  # fmt: skip


def question_range(question: str) -> str | None:
    """The window a question names (``in the last 6 hours`` -> ``6h``), or None.

    A question can name more than one span ("blocks that took longer than 2 minutes, in the
    past 24 hours"): the window is the one introduced by a look-back word (``last``, ``past``,
    ``in the``...); without one, the first span.
    """
    spans = list(_QUESTION_SPAN.finditer(question))
    if not spans:
        return None

    def looks_back(m: re.Match[str]) -> bool:
        return bool(m.group(3) or _LOOKBACK.search(question[max(0, m.start() - 24) : m.start()]))

    lookback = [m for m in spans if looks_back(m)]
    m = (lookback or spans)[0]
    number = m.group(1) or "1"
    word = (m.group(2) or m.group(3)).lower().rstrip("s")
    return f"{number}{_UNITS.get(word, 'm')}"


_SPAN_PHRASE = re.compile(
    r"\b(?:(?:in|over|during|for|within)\s+)?(?:the\s+)?(?:(?:last|past|previous)\s+)?"
    r"(?:(?:\d+|an?|one)\s*)?(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?)\b",
    re.IGNORECASE,
)


def without_time_span(question: str) -> str:
    """``question`` without the window it names (``in the last 6 hours``): what is left is
    what it asks about."""
    return " ".join(_SPAN_PHRASE.sub(" ", question).split())


def range_from_question(question: str) -> str:
    """The window a question names (``in the last 6 hours`` -> ``6h``); ``5m`` if none."""
    return question_range(question) or "5m"


_RANGE_FUNCS = ("count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time",
                "avg_over_time", "max_over_time", "min_over_time", "quantile_over_time",
                "absent_over_time", "first_over_time", "last_over_time", "stddev_over_time",
                "stdvar_over_time")  # fmt: skip


def missing_range(text: str, question: str) -> str | None:
    """A range function without ``[range]``: add the window the question names."""
    if "[" in strings_masked(text) or not any(f + "(" in text for f in _RANGE_FUNCS):
        return None
    masked = strings_masked(text)
    for func in _RANGE_FUNCS:
        at = masked.find(func + "(")
        if at < 0:
            continue
        depth = 0
        for i in range(at + len(func), len(masked)):
            if masked[i] == "(":
                depth += 1
            elif masked[i] == ")":
                depth -= 1
                if depth == 0:
                    return text[:i] + f" [{range_from_question(question)}]" + text[i:]
    return None


def window_from_question(expr: ast.Expr, question: str) -> tuple[ast.Expr, list[str]]:
    """``expr`` with its range set to the window the question names, and the repair's name.

    Why: a small model copies the range of the examples it saw (``[5m]``) more often than it
    reads the question's "in the last 24 hours"; in the training pairs the gold range is the
    question's window in 141 of the 152 that name one (the other 11 disagree with their own
    question). Only a query whose range functions all share one range is changed: two
    different ranges (a short rate over a long baseline) are deliberate.
    """
    window = question_range(question)
    ranges = {node.range_nanos for node in walk(expr) if isinstance(node, ast.LogRange)}
    if window is None or len(ranges) != 1:
        return expr, []
    nanos = parse_duration(window)
    if ranges == {nanos}:
        return expr, []
    return map_nodes(expr, ast.LogRange, lambda r: dataclasses.replace(r, range_nanos=nanos)), [
        "range from question"
    ]


def drop_unwrap_errors(expr: ast.Expr) -> ast.Expr | None:
    """``expr`` with ``| __error__=""`` after every ``unwrap`` that lacks it, or None.

    Why: Loki fails a whole query when one line's unwrapped label is missing or not a
    number (``SampleExtractionErr``), and the idiom its users write is to drop those lines;
    the answer loop applies it only to a candidate that failed that way, and names it.
    """

    def fix(unwrap: ast.Unwrap) -> ast.Unwrap:
        if any(isinstance(f, ast.StringFilter) and f.matcher.name == "__error__"
               for f in unwrap.post_filters):  # fmt: skip
            return unwrap
        keep = ast.StringFilter(LabelMatcher("__error__", MatchOp.EQ, ""))
        return dataclasses.replace(unwrap, post_filters=(*unwrap.post_filters, keep))

    fixed = map_nodes(expr, ast.Unwrap, fix)
    return None if fixed == expr else fixed


_DISTINCT = re.compile(r"\b(?:unique|distinct|different)\b|\bhow many\b[^?]*\b(?:are|were) there\b",
                       re.IGNORECASE)  # fmt: skip


def count_of_unset_groups(
    expr: ast.Expr, stream_labels: Iterable[str], question: str | None = None
) -> tuple[ast.Expr, list[str]]:
    """``count(sum by (x) (M))`` -> ``sum(M)`` where no stream label and no stage of ``M``
    sets any of the ``by`` labels; and the repair made, as a message.

    Why: the count of distinct ``x`` is how the training data asks "how many unique
    blocks", and a small model copies that shape onto plain "how many" questions with a
    made-up label (``count(sum by (break_in_attempt) (count_over_time(...)))``). With no
    ``x`` anywhere there is one group, so the query answers 1 whatever the logs say; a
    question that asked how many times something happened wants ``sum(M)``. A question
    that asks for distinct things ("unique", "distinct", "how many nodes are there") is
    left alone: there the count is meant and the missing label is the error, which a sum
    would not fix. So is a label some stage *could* set (``json``, ``logfmt`` without
    extractions).
    """
    if question is not None and _DISTINCT.search(question):
        return expr, []
    known = frozenset(stream_labels)
    done: list[str] = []

    def fix(node: ast.VectorAggregation) -> ast.VectorAggregation:
        inner = node.expr
        if (node.op != "count" or node.grouping is not None
                or not isinstance(inner, ast.VectorAggregation) or inner.op != "sum"
                or inner.grouping is None or inner.grouping.without):  # fmt: skip
            return node
        produced = set(known)
        for log in (n for n in walk(inner) if isinstance(n, ast.LogExpr)):
            for stage in log.stages:
                names = labels_set_by(stage)
                if names is None:
                    return node
                produced |= names
        if produced & set(inner.grouping.labels):
            return node
        done.append(f"count(sum by ({', '.join(inner.grouping.labels)})) -> sum: no stream "
                    "or stage sets that label")  # fmt: skip
        return dataclasses.replace(inner, grouping=None, grouping_first=False)

    fixed = map_nodes(expr, ast.VectorAggregation, fix)
    return (fixed, done) if done else (expr, [])


_OVER_TIME = re.compile(r"\b([a-z]+)_over_time(\s*\()")
_FUNC_SYNONYMS = {"total": "sum", "mean": "avg", "average": "avg", "maximum": "max",
                  "minimum": "min", "number": "count", "num": "count", "std": "stddev"}  # fmt: skip
_OVER_TIME_KINDS = ("count", "sum", "avg", "max", "min", "first", "last", "stddev", "stdvar",
                    "quantile", "absent", "bytes")  # fmt: skip


def fix_function_names(text: str) -> str | None:
    """``total_over_time(`` -> ``sum_over_time(`` (and ``mean``, ``average``...; else the
    closest known ``*_over_time``), outside strings."""
    masked = strings_masked(text)
    out = text
    for m in reversed(list(_OVER_TIME.finditer(masked))):
        kind = m.group(1)
        if kind in _OVER_TIME_KINDS:
            continue
        known = _FUNC_SYNONYMS.get(kind) or _closest(kind, _OVER_TIME_KINDS, 0.6)
        if known is not None:
            out = out[: m.start(1)] + known + out[m.end(1) :]
    return out if out != text else None


_COUNTING = ("count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time")
_UNWRAPPING = ("sum_over_time", "avg_over_time", "max_over_time", "min_over_time",
               "first_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
               "quantile_over_time", "rate_counter")  # fmt: skip
_UNWRAP_STAGE = re.compile(r"\|\s*unwrap\s+(?:\w+\s*\(\s*\w+\s*\)|\w+)")


def unwrap_in_counting(text: str) -> str | None:
    """Drop ``| unwrap x`` from a query whose range functions all count lines
    (``count_over_time``, ``rate``...), which take no unwrapped value."""
    masked = strings_masked(text)
    if not any(f + "(" in masked for f in _COUNTING) or any(f + "(" in masked
                                                            for f in _UNWRAPPING):  # fmt: skip
        return None
    spans = [m.span() for m in _UNWRAP_STAGE.finditer(masked)]
    out = text
    for start, end in reversed(spans):
        out = out[:start].rstrip() + " " + out[end:].lstrip()
    return out if spans else None


_REGEXP_STAGE = re.compile(r'\bregexp\s+("(?:[^"\\]|\\.)*"|`[^`]*`)')
_GROUP_NAME = re.compile(r"\(\?P<(\w+)>")


def rename_repeated_captures(text: str) -> str | None:
    """``(?P<u>..) .. (?P<u>..)`` in one ``regexp`` -> ``(?P<u>..) .. (?P<u_2>..)``: Loki
    rejects a name extracted twice; the first keeps its name."""

    def rename(m: re.Match[str]) -> str:
        seen: dict[str, int] = {}

        def one(g: re.Match[str]) -> str:
            seen[g.group(1)] = seen.get(g.group(1), 0) + 1
            n = seen[g.group(1)]
            return g.group(0) if n == 1 else f"(?P<{g.group(1)}_{n}>"

        return m.group(0)[: m.start(1) - m.start(0)] + _GROUP_NAME.sub(one, m.group(1))

    fixed = _REGEXP_STAGE.sub(rename, text)
    return fixed if fixed != text else None


_REGEXP_PARSER = re.compile(r'\|\s*regexp\s+("(?:[^"\\]|\\.)*"|`[^`]*`)')
_ANY_NAMED_GROUP = re.compile(r"\(\?P?<\w+>")


def drop_captureless_regexp(text: str) -> str | None:
    """Drop ``| regexp "..."`` stages whose pattern names no capture.

    Why: Loki refuses such a stage ("at least one named capture must be supplied"), and a
    small model writes one to mean "lines like this" after a line filter that already says
    it (``|~ "Active base files: .*" | regexp "Active base files: .*"``). A ``regexp`` stage
    never drops lines, it only adds the labels it names; naming none, it does nothing, so
    removing it changes no answer."""
    masked = strings_masked(text)
    spans = [m.span() for m in _REGEXP_PARSER.finditer(text)
             if masked[m.start()] == "|" and not _ANY_NAMED_GROUP.search(m.group(1))]  # fmt: skip
    out = text
    for start, end in reversed(spans):
        out = out[:start].rstrip() + " " + out[end:].lstrip()
    return out if spans else None


TextRepair = Callable[[str, str], str | None]
TEXT_REPAIRS: Sequence[tuple[str, TextRepair]] = (
    ("single quotes", lambda t, q: _single_quotes(t)),
    ("== in selector", lambda t, q: _selector_double_equals(t)),
    ("range spelling", lambda t, q: fix_range_spelling(t)),
    ("balanced brackets and strings", lambda t, q: balance(t)),
    ("missing range", missing_range),
    ("function name", lambda t, q: fix_function_names(t)),
    ("unwrap in a counting function", lambda t, q: unwrap_in_counting(t)),
    ("repeated capture names", lambda t, q: rename_repeated_captures(t)),
    ("regexp without a named capture", lambda t, q: drop_captureless_regexp(t)),
)
"""(name, repair(text, question)) in the order they are tried; each returns None when it
does not apply."""


def _closest(word: str, choices: Sequence[str], cutoff: float) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    contains = sorted(c for c in choices if word and (word.lower() in c.lower()))
    if len(contains) == 1:
        return contains[0]
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


_NAME_ALIASES = {"app": "application", "host": "hostname", "level": "log_level",
                 "severity": "log_level", "service": "application",
                 "job": "application"}  # fmt: skip


def repair_labels(
    expr: ast.Expr, labels: Mapping[str, Sequence[str]], question: str | None = None
) -> tuple[ast.Expr, list[str]]:
    """Selector matchers moved to known label names and values where one is close; the
    repairs made, as messages. Regex and negative matchers are left alone.

    Given the ``question``, an equality matcher on a label the store does not have (and
    none close) is dropped unless the question names its label or value: the model
    invented it (``tenant_id="tenant-2"``), and it would select nothing. A selector keeps
    at least its original matchers."""
    done: list[str] = []
    names = list(labels)
    words = set(re.findall(r"[\w.-]+", question.lower())) if question is not None else set()

    def fix(m: LabelMatcher) -> LabelMatcher | None:
        name = m.name
        if name not in labels and names:
            alias = _NAME_ALIASES.get(name.lower())
            target = alias if alias in labels else _closest(name, names, 0.7)
            if target is None:
                if (question is None or m.op != MatchOp.EQ
                        or {name.lower(), m.value.lower().strip("'")} & words):  # fmt: skip
                    return m
                done.append(f'{name}="{m.value}" dropped: the store has no label {name}')
                return None
            done.append(f"label {name} -> {target}")
            name = target
        if m.op != MatchOp.EQ or name not in labels:
            return LabelMatcher(name, m.op, m.value) if name != m.name else m
        values = list(labels[name])
        if m.value in values or not values:
            return LabelMatcher(name, m.op, m.value) if name != m.name else m
        value = _closest(m.value, values, 0.8)
        if value is None:
            return LabelMatcher(name, m.op, m.value) if name != m.name else m
        done.append(f'{name}="{m.value}" -> "{value}"')
        return LabelMatcher(name, m.op, value)

    fixed = map_matchers(expr, fix)
    return (fixed, done) if fixed != expr else (expr, [])
