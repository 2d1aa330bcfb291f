"""One line of English saying what a LogQL query computes, written from its syntax tree.

Why from the tree and not from the model: the explanation must describe the query that
runs, never what a model thinks it wrote, and the same query must always read the same.
So it is deterministic, covers every node of :mod:`logpipe.logql.ast`, and is phrased the
way a person would say it: ``sum by (host) (count_over_time({app="x"} |= "y" [5m]))``
reads "Counts lines of {app="x"} containing "y" per 5m, by host."
"""

from __future__ import annotations

import re

from logpipe.logql import ast
from logpipe.logql.units import format_bytes, format_duration

__all__ = ["explain"]

_LINE_OPS = {"|=": "containing", "!=": "not containing", "|~": "matching the regex",
             "!~": "not matching the regex", "|>": "matching the pattern",
             "!>": "not matching the pattern"}  # fmt: skip
_UNWRAPPED = {"sum_over_time": "the sum of", "avg_over_time": "the average of",
              "min_over_time": "the minimum of", "max_over_time": "the maximum of",
              "stddev_over_time": "the standard deviation of",
              "stdvar_over_time": "the variance of", "first_over_time": "the first value of",
              "last_over_time": "the last value of",
              "rate_counter": "the per-second counter rate of"}  # fmt: skip
_COUNTING = ("count_over_time", "rate", "bytes_over_time", "bytes_rate")
_AGGREGATE = {"sum": "summed", "avg": "averaged", "min": "the minimum taken",
              "max": "the maximum taken", "stddev": "the standard deviation taken",
              "stdvar": "the variance taken"}  # fmt: skip
_COMPARE = {">": "above", ">=": "at least", "<": "below", "<=": "at most", "==": "equal to",
            "!=": "not equal to"}  # fmt: skip
_ARITH = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "%": "modulo",
          "^": "to the power of"}  # fmt: skip
_CAPTURE = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_PATTERN_CAPTURE = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: float) -> str:
    return f"{value:g}"


def _label_filter(node: ast.LabelFilter) -> str:
    if isinstance(node, ast.StringFilter):
        return str(node.matcher)
    if isinstance(node, ast.IpFilter):
        return f"{node.label} {'not ' if node.negate else ''}in {node.cidr}"
    if isinstance(node, ast.NumberFilter):
        return f"{node.label} {node.op} {_number(node.value)}"
    if isinstance(node, ast.DurationFilter):
        return f"{node.label} {node.op} {format_duration(node.nanos)}"
    if isinstance(node, ast.BytesFilter):
        return f"{node.label} {node.op} {format_bytes(node.size)}"
    if isinstance(node, ast.AndFilter):
        return f"{_label_filter(node.left)} and {_label_filter(node.right)}"
    return f"({_label_filter(node.left)} or {_label_filter(node.right)})"


def _line_filter(node: ast.LineFilter) -> str:
    values = [f"an IP in {v.cidr}" if isinstance(v, ast.IpValue) else _quote(v)
              for v in node.values]  # fmt: skip
    return f"{_LINE_OPS[node.op]} {' or '.join(values)}"


def _names(items: tuple[str | object, ...]) -> str:
    return ", ".join(str(i) for i in items)


def _stage(node: ast.Stage) -> str:
    if isinstance(node, ast.LineFilter):
        return _line_filter(node)
    if isinstance(node, ast.JsonParser | ast.LogfmtParser):
        kind = "JSON" if isinstance(node, ast.JsonParser) else "logfmt"
        picked = [e.label for e in node.extractions]
        return f"parsed as {kind}" + (f" ({', '.join(picked)})" if picked else "")
    if isinstance(node, ast.RegexpParser | ast.PatternParser):
        regex = isinstance(node, ast.RegexpParser)
        names = (_CAPTURE if regex else _PATTERN_CAPTURE).findall(node.pattern)
        names = [n for n in names if n != "_"]
        what = ", ".join(names) if names else "fields"
        return f"with {what} extracted by a {'regexp' if regex else 'pattern'}"
    if isinstance(node, ast.UnpackParser):
        return "unpacked"
    if isinstance(node, ast.Decolorize):
        return "without colour codes"
    if isinstance(node, ast.LineFormat):
        return "rewritten with a line template"
    if isinstance(node, ast.LabelFormat):
        return "with label(s) " + ", ".join(item.dst for item in node.items) + " set"
    if isinstance(node, ast.Drop):
        return f"dropping label(s) {_names(node.items)}"
    if isinstance(node, ast.Keep):
        return f"keeping only label(s) {_names(node.items)}"
    return f"where {_label_filter(node.filter)}"


def _selection(log: ast.LogExpr) -> str:
    """``lines of {app="x"} containing "y", parsed as logfmt, where status >= 500``."""
    text = "lines of {" + ", ".join(str(m) for m in log.matchers) + "}"
    parts = [_stage(s) for s in log.stages]
    if parts:
        text += " " + parts[0] + "".join(", " + p for p in parts[1:])
    return text


def _grouping(grouping: ast.Grouping | None) -> str:
    if grouping is None:
        return ""
    if not grouping.labels:
        return " into one series" if not grouping.without else ""
    return f" {'without' if grouping.without else 'by'} {', '.join(grouping.labels)}"


def _window(rng: ast.LogRange) -> str:
    text = f"per {format_duration(rng.range_nanos)}"
    if rng.offset_nanos:
        text += f", {format_duration(rng.offset_nanos)} earlier"
    return text


def _unwrapped(unwrap: ast.Unwrap) -> str:
    label = f"{unwrap.conversion}({unwrap.label})" if unwrap.conversion else unwrap.label
    text = label
    if unwrap.post_filters:
        text += " (where " + " and ".join(_label_filter(f) for f in unwrap.post_filters) + ")"
    return text


def _range(node: ast.RangeAggregation) -> str:
    rng = node.range
    sel, window = _selection(rng.log), _window(rng)
    group = _grouping(node.grouping)
    if node.op == "count_over_time":
        text = f"counts {sel} {window}"
    elif node.op == "rate":
        if rng.unwrap is not None:
            text = f"the per-second rate of {_unwrapped(rng.unwrap)} in {sel} {window}"
        else:
            text = f"the per-second rate of {sel} {window}"
    elif node.op == "bytes_over_time":
        text = f"the bytes of {sel} {window}"
    elif node.op == "bytes_rate":
        text = f"the bytes per second of {sel} {window}"
    elif node.op == "absent_over_time":
        text = f"1 when there are no {sel} {window}"
    elif node.op == "quantile_over_time":
        assert rng.unwrap is not None and node.param is not None
        text = (f"the {_number(node.param * 100)}th percentile of {_unwrapped(rng.unwrap)} in "
                f"{sel} {window}")  # fmt: skip
    else:
        what = _UNWRAPPED.get(node.op, node.op)
        value = _unwrapped(rng.unwrap) if rng.unwrap is not None else "values"
        text = f"{what} {value} in {sel} {window}"
    return text + (f",{group}" if group else "")


def _distinct(node: ast.VectorAggregation) -> str | None:
    """``count(sum by (x) (count_over_time(...)))``: how many distinct ``x``."""
    inner = node.expr
    if (node.op == "count" and node.grouping is None and isinstance(inner, ast.VectorAggregation)
            and inner.grouping is not None and not inner.grouping.without
            and inner.grouping.labels and isinstance(inner.expr, ast.RangeAggregation)
            and inner.expr.op == "count_over_time"):  # fmt: skip
        rng = inner.expr.range
        names = ", ".join(inner.grouping.labels)
        return f"the number of distinct {names} values in {_selection(rng.log)} {_window(rng)}"
    return None


def _vector(node: ast.VectorAggregation) -> str:
    distinct = _distinct(node)
    if distinct is not None:
        return distinct
    inner, group = _text(node.expr), _grouping(node.grouping)
    if node.op in ("topk", "bottomk"):
        k = int(node.param or 0)
        which = "largest" if node.op == "topk" else "smallest"
        return f"the {k} {which} series{group} of: {inner}"
    if node.op in ("sort", "sort_desc"):
        return f"{inner}, sorted {'descending' if node.op == 'sort_desc' else 'ascending'}"
    if node.op == "count":
        return f"the number of series{group} of: {inner}"
    if (node.op == "sum" and isinstance(node.expr, ast.RangeAggregation)
            and node.expr.op in _COUNTING and node.expr.grouping is None):  # fmt: skip
        return f"{inner}, {group.strip() if group else 'in total'}"
    return f"{inner}, {_AGGREGATE.get(node.op, node.op)}{group or ' over all series'}"


def _binary(node: ast.BinaryOp) -> str:
    lhs = _text(node.lhs)
    rhs = node.rhs
    if node.op in _COMPARE and isinstance(rhs, ast.NumberLiteral):
        if node.return_bool:
            return f"1 where {lhs} is {_COMPARE[node.op]} {_number(rhs.value)}, else 0"
        return f"{lhs}, only where {_COMPARE[node.op]} {_number(rhs.value)}"
    if node.op in _ARITH and isinstance(rhs, ast.NumberLiteral):
        return f"{lhs}, {_ARITH[node.op]} {_number(rhs.value)}"
    word = _ARITH.get(node.op) or {"and": "where also", "or": "or else",
                                   "unless": "except where"}.get(node.op)  # fmt: skip
    if word is None:
        word = f"compared ({node.op}) with"
    return f"({lhs}) {word} ({_text(rhs)})"


def _text(expr: ast.Expr) -> str:
    if isinstance(expr, ast.LogExpr):
        return "lists " + _selection(expr)
    if isinstance(expr, ast.RangeAggregation):
        return _range(expr)
    if isinstance(expr, ast.VectorAggregation):
        return _vector(expr)
    if isinstance(expr, ast.BinaryOp):
        return _binary(expr)
    if isinstance(expr, ast.NumberLiteral | ast.VectorLiteral):
        return f"the constant {_number(expr.value)}"
    return (f"{_text(expr.expr)}, with label {expr.dst} set from {expr.src or 'nothing'} "
            f"by {_quote(expr.regex)}")  # fmt: skip


def explain(expr: ast.Expr) -> str:
    """One sentence saying what ``expr`` computes."""
    text = " ".join(_text(expr).split())
    first = 1 if text.startswith("(") else 0  # "(the rate ...) divided by (...)"
    text = text[:first] + text[first : first + 1].upper() + text[first + 1 :]
    return text + ("" if text.endswith(".") else ".")
