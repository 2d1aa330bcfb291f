"""The checks Loki makes after parsing: well-formed LogQL that is still not a valid query.

Why separate from the parser: the rules are about meaning (which range functions need
``unwrap``, which take a parameter, which matchers select everything), and the NL feature
validates generated queries with exactly these rules before running them. Messages follow
Loki's wording where it has one, and name the position of the offending part.
"""

from __future__ import annotations

import ipaddress
import re

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.errors import LogQLValidationError
from logpipe.labels import LABEL_NAME
from logpipe.logql import ast
from logpipe.logql.gotemplate import TemplateError, compile_template

__all__ = ["validate"]

# range functions over unwrapped sample values, and those over log lines
UNWRAP_OPS = frozenset({"avg_over_time", "sum_over_time", "min_over_time", "max_over_time",
                        "stddev_over_time", "stdvar_over_time", "quantile_over_time",
                        "first_over_time", "last_over_time", "rate_counter"})  # fmt: skip
LINE_OPS = frozenset({"count_over_time", "bytes_over_time", "bytes_rate", "absent_over_time"})
EITHER_OPS = frozenset({"rate"})  # rate counts lines, or averages unwrapped values per second
COMPARISON_OPS = frozenset({"==", "!=", ">", ">=", "<", "<="})
SET_OPS = frozenset({"and", "or", "unless"})
_EMPTY_SELECTOR = (
    "queries require at least one regexp or equality matcher that does not have an "
    'empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
    'app=~".+" will'
)
_PATTERN_CAPTURE = re.compile(r"<([^<>]*)>")
_NAMED_GROUP = re.compile(r"(?<!\\)\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")


class _Checker:
    def __init__(self, query: str) -> None:
        self.query = query

    def fail(self, message: str, pos: int) -> None:
        raise LogQLValidationError(message, query=self.query, pos=pos if self.query else -1)

    # ------------------------------------------------------------------ log side
    def log(self, node: ast.LogExpr) -> None:
        if not any(not m.matches_empty() for m in node.matchers):
            self.fail(_EMPTY_SELECTOR, node.pos)
        for stage in node.stages:
            self.stage(stage)

    def regex(self, pattern: str, pos: int, what: str) -> None:
        try:
            pc.match_substring_regex(pa.array([""], pa.string()), pattern=pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            self.fail(f"invalid {what} {pattern!r}: {exc}", pos)

    def regexp_parser(self, stage: ast.RegexpParser) -> None:
        """As Loki's ``NewRegexpParser``: RE2 syntax, a named capture, each name once (an
        extracted label cannot be two things); then the pattern must compile where the
        parser runs it (Python's ``re``), so nothing that validates fails at execution."""
        self.regex(stage.pattern, stage.pos, "regexp parser expression")
        names = _NAMED_GROUP.findall(stage.pattern)
        if not names:
            self.fail("at least one named capture must be supplied", stage.pos)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.fail(f"duplicate extracted label name '{name}'", stage.pos)
            seen.add(name)
        try:
            re.compile(stage.pattern)
        except re.error as exc:
            self.fail(f"invalid regexp parser expression {stage.pattern!r}: {exc}", stage.pos)

    def cidr(self, text: str, pos: int) -> None:
        try:
            if "-" in text:
                first, last = text.split("-", 1)
                ipaddress.ip_address(first.strip())
                ipaddress.ip_address(last.strip())
            elif "/" in text:
                ipaddress.ip_network(text, strict=False)
            else:
                ipaddress.ip_address(text)
        except ValueError:
            self.fail(f"invalid ip address, range or CIDR {text!r}", pos)

    def stage(self, stage: ast.Stage) -> None:
        if isinstance(stage, ast.LineFilter):
            for value in stage.values:
                if isinstance(value, ast.IpValue):
                    self.cidr(value.cidr, stage.pos)
                elif stage.op in ("|~", "!~"):
                    self.regex(value, stage.pos, "regular expression")
        elif isinstance(stage, ast.RegexpParser):
            self.regexp_parser(stage)
        elif isinstance(stage, ast.PatternParser):
            names = [n for n in _PATTERN_CAPTURE.findall(stage.pattern) if n != "_"]
            if not names:
                self.fail("at least one capture is required", stage.pos)
            bad = [n for n in names if not LABEL_NAME.fullmatch(n)]
            if bad:
                self.fail(f"invalid capture name {bad[0]!r} in pattern", stage.pos)
        elif isinstance(stage, ast.LabelFilterStage):
            self.label_filter(stage.filter)
        elif isinstance(stage, ast.LineFormat):
            self.template(stage.template, stage.pos)
        elif isinstance(stage, ast.LabelFormat):
            for item in stage.items:
                if item.is_template:
                    self.template(item.src, stage.pos)

    def template(self, source: str, pos: int) -> None:
        try:
            compile_template(source)
        except TemplateError as exc:
            self.fail(f"invalid template {source!r}: {exc}", pos)

    def label_filter(self, node: ast.LabelFilter) -> None:
        if isinstance(node, ast.AndFilter | ast.OrFilter):
            self.label_filter(node.left)
            self.label_filter(node.right)
        elif isinstance(node, ast.IpFilter):
            self.cidr(node.cidr, node.pos)

    # ------------------------------------------------------------------ metric side
    def metric(self, node: ast.MetricExpr) -> None:
        if isinstance(node, ast.RangeAggregation):
            self.range_agg(node)
        elif isinstance(node, ast.VectorAggregation):
            self.vector_agg(node)
        elif isinstance(node, ast.BinaryOp):
            self.binop(node)
        elif isinstance(node, ast.LabelReplace):
            self.metric(node.expr)
            if not LABEL_NAME.fullmatch(node.dst):
                self.fail(f"invalid destination label name in label_replace(): {node.dst}",
                          node.pos)  # fmt: skip
            if node.src and not LABEL_NAME.fullmatch(node.src):
                self.fail(f"invalid source label name in label_replace(): {node.src}", node.pos)
            self.regex(f"^(?:{node.regex})$", node.pos, "regular expression in label_replace()")

    def range_agg(self, node: ast.RangeAggregation) -> None:
        rng = node.range
        self.log(rng.log)
        if rng.range_nanos <= 0:
            self.fail("invalid range: must be greater than zero", rng.pos)
        if rng.offset_nanos < 0:
            self.fail("invalid offset: must not be negative", rng.pos)
        if rng.unwrap is not None:
            for f in rng.unwrap.post_filters:
                self.label_filter(f)
        if node.op in UNWRAP_OPS and rng.unwrap is None:
            self.fail(f"invalid aggregation {node.op} without unwrap", node.pos)
        if node.op in LINE_OPS and rng.unwrap is not None:
            self.fail(f"invalid aggregation {node.op} with unwrap", node.pos)
        if node.op == "quantile_over_time":
            if node.param is None:
                self.fail("quantile_over_time needs a quantile, e.g. quantile_over_time(0.99, ...)",
                          node.pos)  # fmt: skip
        elif node.param is not None:
            self.fail(f"invalid aggregation {node.op}: it takes no parameter", node.pos)
        if node.grouping is not None and rng.unwrap is None:
            self.fail(f"grouping not allowed for {node.op} aggregation", node.pos)

    def vector_agg(self, node: ast.VectorAggregation) -> None:
        self.metric(node.expr)
        if node.op in ("topk", "bottomk"):
            k = node.param
            if k is None:
                self.fail(f"{node.op} needs a parameter, e.g. {node.op}(5, ...)", node.pos)
            elif not float(k).is_integer() or k <= 0:
                self.fail(f"invalid parameter for {node.op}: must be an integer greater than 0",
                          node.pos)  # fmt: skip
        elif node.param is not None:
            self.fail(f"unsupported parameter for operation {node.op}", node.pos)
        if node.op in ("sort", "sort_desc") and node.grouping is not None:
            self.fail(f"grouping not allowed for {node.op} aggregation", node.pos)

    def binop(self, node: ast.BinaryOp) -> None:
        self.metric(node.lhs)
        self.metric(node.rhs)
        if node.return_bool and node.op not in COMPARISON_OPS:
            self.fail("bool modifier can only be used on comparison operators", node.pos)
        if node.op in SET_OPS:
            if node.matching is not None and node.matching.card != "one":
                self.fail(f"no grouping allowed for {node.op!r} operation", node.pos)
            for side in (node.lhs, node.rhs):
                if isinstance(side, ast.NumberLiteral):
                    self.fail(f"set operator {node.op!r} not allowed in binary scalar expression",
                              node.pos)  # fmt: skip
        scalars = all(isinstance(s, ast.NumberLiteral) for s in (node.lhs, node.rhs))
        if scalars and node.op in COMPARISON_OPS and not node.return_bool:
            self.fail("comparisons between scalars must use BOOL modifier", node.pos)
        if node.matching is not None and scalars:
            self.fail("vector matching only allowed between vectors", node.pos)


def validate(expr: ast.Expr, query: str = "") -> None:
    """Raise :class:`~logpipe.errors.LogQLValidationError` if Loki would reject ``expr``.

    ``query`` (the source text) lets the message name a line and column.
    """
    checker = _Checker(query)
    if isinstance(expr, ast.LogExpr):
        checker.log(expr)
    else:
        checker.metric(expr)
