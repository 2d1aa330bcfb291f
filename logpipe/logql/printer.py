"""Syntax tree -> LogQL text, in one canonical spelling.

The contract, held by tests over every construct and by a Hypothesis round trip:
``parse(format_query(q)) == q``. Strings are printed as Go literals (what Loki prints),
durations and byte sizes in exact units, and operands of binary operators are always
parenthesised, so the printed text never depends on operator precedence.
"""

from __future__ import annotations

from functools import singledispatch

from logpipe.labels import LabelMatcher
from logpipe.logql import ast
from logpipe.logql.units import format_bytes, format_duration, format_number
from logpipe.quoting import go_quote

__all__ = ["format_query"]


def format_query(expr: ast.Expr) -> str:
    """The canonical LogQL text of ``expr``."""
    return _fmt(expr)


@singledispatch
def _fmt(node: object) -> str:
    raise TypeError(f"not a LogQL node: {type(node).__name__}")


def _selector(matchers: tuple[LabelMatcher, ...]) -> str:
    return "{" + ", ".join(str(m) for m in matchers) + "}"


@_fmt.register
def _(node: ast.LogExpr) -> str:
    return " ".join([_selector(node.matchers), *(_stage(s) for s in node.stages)])


def _extractions(items: tuple[ast.Extraction, ...]) -> str:
    parts = [e.label if e.expression is None else f"{e.label}={go_quote(e.expression)}"
             for e in items]  # fmt: skip
    return (" " + ", ".join(parts)) if parts else ""


def _drop_items(items: tuple[str | LabelMatcher, ...]) -> str:
    return ", ".join(str(i) for i in items)


def _stage(stage: ast.Stage) -> str:
    if isinstance(stage, ast.LineFilter):
        values = " or ".join(
            f"ip({go_quote(v.cidr)})" if isinstance(v, ast.IpValue) else go_quote(v)
            for v in stage.values
        )
        return f"{stage.op} {values}"
    if isinstance(stage, ast.JsonParser):
        return "| json" + _extractions(stage.extractions)
    if isinstance(stage, ast.LogfmtParser):
        flags = (" --strict" if stage.strict else "") + (
            " --keep-empty" if stage.keep_empty else ""
        )
        return "| logfmt" + flags + _extractions(stage.extractions)
    if isinstance(stage, ast.RegexpParser):
        return f"| regexp {go_quote(stage.pattern)}"
    if isinstance(stage, ast.PatternParser):
        return f"| pattern {go_quote(stage.pattern)}"
    if isinstance(stage, ast.UnpackParser):
        return "| unpack"
    if isinstance(stage, ast.Decolorize):
        return "| decolorize"
    if isinstance(stage, ast.LineFormat):
        return f"| line_format {go_quote(stage.template)}"
    if isinstance(stage, ast.LabelFormat):
        items = [f"{i.dst}={go_quote(i.src) if i.is_template else i.src}" for i in stage.items]
        return "| label_format " + ", ".join(items)
    if isinstance(stage, ast.Drop):
        return "| drop " + _drop_items(stage.items)
    if isinstance(stage, ast.Keep):
        return "| keep " + _drop_items(stage.items)
    return "| " + label_filter_text(stage.filter)


def label_filter_text(node: ast.LabelFilter) -> str:
    """A label filter expression, parenthesised exactly where its tree needs it."""
    if isinstance(node, ast.StringFilter):
        return str(node.matcher)
    if isinstance(node, ast.IpFilter):
        return f"{node.label}{'!=' if node.negate else '='}ip({go_quote(node.cidr)})"
    if isinstance(node, ast.NumberFilter):
        return f"{node.label} {node.op} {format_number(node.value)}"
    if isinstance(node, ast.DurationFilter):
        return f"{node.label} {node.op} {format_duration(node.nanos)}"
    if isinstance(node, ast.BytesFilter):
        return f"{node.label} {node.op} {format_bytes(node.size)}"
    if isinstance(node, ast.AndFilter):
        left = label_filter_text(node.left)
        if isinstance(node.left, ast.OrFilter):
            left = f"({left})"
        right = label_filter_text(node.right)
        if isinstance(node.right, ast.OrFilter | ast.AndFilter):
            right = f"({right})"
        sep = {"and": " and ", ",": ", ", " ": " "}[node.sep]
        return left + sep + right
    right = label_filter_text(node.right)
    if isinstance(node.right, ast.OrFilter):
        right = f"({right})"
    return f"{label_filter_text(node.left)} or {right}"


@_fmt.register
def _(node: ast.LogRange) -> str:
    parts = [_fmt(node.log)]
    if node.unwrap is not None:
        u = node.unwrap
        target = f"{u.conversion}({u.label})" if u.conversion else u.label
        parts.append(f"| unwrap {target}")
        parts.extend("| " + label_filter_text(f) for f in u.post_filters)
    window = f"[{format_duration(node.range_nanos)}]"
    if len(parts) == 1 and not node.log.stages:  # `{a="b"}[5m]`, as Loki writes it
        parts[0] += window
    else:
        parts.append(window)
    if node.offset_nanos:
        parts.append(f"offset {format_duration(node.offset_nanos)}")
    return " ".join(parts)


def _grouping(grouping: ast.Grouping) -> str:
    return f"{'without' if grouping.without else 'by'} ({', '.join(grouping.labels)})"


@_fmt.register
def _(node: ast.RangeAggregation) -> str:
    param = "" if node.param is None else format_number(node.param) + ", "
    text = f"{node.op}({param}{_fmt(node.range)})"
    return text if node.grouping is None else f"{text} {_grouping(node.grouping)}"


@_fmt.register
def _(node: ast.VectorAggregation) -> str:
    param = "" if node.param is None else format_number(node.param) + ", "
    body = f"({param}{_fmt(node.expr)})"
    if node.grouping is None:
        return node.op + body
    if node.grouping_first:
        return f"{node.op} {_grouping(node.grouping)} {body}"
    return f"{node.op}{body} {_grouping(node.grouping)}"


def _operand(node: ast.MetricExpr) -> str:
    text = _fmt(node)
    return f"({text})" if isinstance(node, ast.BinaryOp) else text


@_fmt.register
def _(node: ast.BinaryOp) -> str:
    rhs = _operand(node.rhs)
    parts = [_operand(node.lhs), node.op]
    if node.return_bool:
        parts.append("bool")
    m = node.matching
    if m is not None:
        parts.append(f"{'on' if m.on else 'ignoring'} ({', '.join(m.labels)})")
        if m.card != "one":
            group = f"group_{m.card}"
            # a bare group_left before a parenthesis would read it as its label list
            bare = not m.include and not rhs.startswith("(")
            parts.append(group if bare else f"{group} ({', '.join(m.include)})")
    parts.append(rhs)
    return " ".join(parts)


@_fmt.register
def _(node: ast.NumberLiteral) -> str:
    return format_number(node.value)


@_fmt.register
def _(node: ast.VectorLiteral) -> str:
    return f"vector({format_number(node.value)})"


@_fmt.register
def _(node: ast.LabelReplace) -> str:
    args = ", ".join(go_quote(a) for a in (node.dst, node.replacement, node.src, node.regex))
    return f"label_replace({_fmt(node.expr)}, {args})"
