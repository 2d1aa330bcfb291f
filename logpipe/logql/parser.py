"""Text -> LogQL syntax tree, with Loki-style errors that name the line and column.

The grammar is ``logql.lark`` (LALR(1), contextual lexer: one pass, linear time). The
transformer below turns Lark's parse tree into :mod:`logpipe.logql.ast` nodes, unquotes
strings (Go literals), normalises units, and checks the few rules a context-free grammar
states badly: where ``unwrap`` may stand and what may follow it, and which comparison
operators a number, duration or byte filter takes.

Every failure is a :class:`~logpipe.errors.LogQLParseError`; nothing else escapes
:func:`parse` for any input string (a Hypothesis test holds us to that).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, NoReturn

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from logpipe.errors import LogQLParseError
from logpipe.labels import LabelError, LabelMatcher, MatchOp
from logpipe.logql import ast
from logpipe.logql.units import parse_bytes, parse_duration
from logpipe.quoting import QuoteError, go_unquote

__all__ = ["parse"]

MAX_QUERY_CHARS = 128 * 1024  # Loki's default max query length is far below this

# Lark's terminal names -> the words a user reads in "expecting ..." (Loki says IDENTIFIER)
_TOKEN_WORDS = {
    "IDENT": "IDENTIFIER",
    "STRING": "STRING",
    "NUMBER": "NUMBER",
    "DURATION": "DURATION",
    "BYTES": "BYTES",
    "RANGE": "RANGE",
    "LBRACE": "{",
    "RBRACE": "}",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "VBAR": "|",
    "EQUAL": "=",
    "PIPE_EQ": "|=",
    "PIPE_RE": "|~",
    "PIPE_PAT": "|>",
    "NOT_PAT": "!>",
    "NEQ": "!=",
    "NRE": "!~",
    "RE_OP": "=~",
    "EQEQ": "==",
    "GT": ">",
    "GTE": ">=",
    "LT": "<",
    "LTE": "<=",
    "RANGE_OP": "range function",
    "VECTOR_OP": "aggregation",
    "MATCH_KIND": "on",
    "GROUP_KIND": "group_left",
    "GROUP_OP": "by",
    "SIGN": "-",
    "$END": "end of query",
}


@cache
def _parser() -> Lark:
    grammar = resources.files("logpipe.logql").joinpath("logql.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True)  # fmt: skip


class _FailError(Exception):
    """Raised inside the transformer; carries the message and source offset."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _fail(message: str, pos: int) -> NoReturn:
    raise _FailError(message, pos)


def _pos(item: Token | Tree[Any]) -> int:
    if isinstance(item, Token):
        return item.start_pos if item.start_pos is not None else -1
    meta = item.meta
    return meta.start_pos if not meta.empty else -1


def _string(token: Token) -> str:
    try:
        return go_unquote(str(token))
    except QuoteError as exc:
        _fail(f"invalid string: {exc}", _pos(token) + exc.offset)


def _matcher(name: Token, op: Token, value: Token) -> LabelMatcher:
    try:
        return LabelMatcher(str(name), MatchOp(str(op)), _string(value))
    except LabelError as exc:
        _fail(str(exc), _pos(name))


def _duration(token: Token) -> int:
    text = str(token).strip("[] \t\n")
    try:
        return parse_duration(text)
    except ValueError:
        _fail(f"invalid duration {text!r}", _pos(token))


def _number(token: Token) -> float:
    text = str(token)
    return float(int(text, 16)) if text[:2].lower() == "0x" else float(text)


def _extractions(items: list[Any]) -> tuple[ast.Extraction, ...]:
    return tuple(item for item in items if isinstance(item, ast.Extraction))


def _label_list(tree: Tree[Any] | None) -> tuple[str, ...]:
    return () if tree is None else tuple(str(t) for t in tree.children)


_NUMERIC_OPS = {">", ">=", "<", "<=", "==", "=", "!="}


@v_args(meta=True)
class _ToAst(Transformer[Token, Any]):
    """Lark tree -> AST. Methods are named after the grammar's rules and aliases."""

    # -------------------------------------------------------------- log side
    def selector(self, meta: Any, children: list[Any]) -> tuple[LabelMatcher, ...]:
        return tuple(c for c in children if isinstance(c, LabelMatcher))

    def matcher(self, meta: Any, children: list[Token]) -> LabelMatcher:
        return _matcher(*children)

    def log_expr(self, meta: Any, children: list[Any]) -> ast.LogExpr:
        matchers, *stages = children
        for stage in stages:
            if isinstance(stage, ast.Unwrap):
                _fail("unwrap is only allowed in a range aggregation, e.g. "
                      "sum_over_time({app=\"x\"} | unwrap bytes [5m])", stage.pos)  # fmt: skip
        return ast.LogExpr(matchers, tuple(stages), pos=meta.start_pos)

    def paren_log(self, meta: Any, children: list[Any]) -> ast.LogExpr:
        return children[0]  # type: ignore[no-any-return]

    def line_filter(self, meta: Any, children: list[Any]) -> ast.LineFilter:
        op, *values = children
        kept = tuple(v if isinstance(v, ast.IpValue) else _string(v) for v in values
                     if isinstance(v, ast.IpValue) or v.type == "STRING")  # fmt: skip
        return ast.LineFilter(str(op), kept, pos=meta.start_pos)

    def ip_value(self, meta: Any, children: list[Token]) -> ast.IpValue:
        return ast.IpValue(_string(children[0]))

    def json(self, meta: Any, children: list[Any]) -> ast.JsonParser:
        return ast.JsonParser(_extractions(children), pos=meta.start_pos)

    def logfmt(self, meta: Any, children: list[Any]) -> ast.LogfmtParser:
        flags = {c for c in children if isinstance(c, str) and not isinstance(c, Token)}
        return ast.LogfmtParser("strict" in flags, "keep_empty" in flags,
                                _extractions(children), pos=meta.start_pos)  # fmt: skip

    def strict_flag(self, meta: Any, children: list[Any]) -> str:
        return "strict"

    def keep_empty_flag(self, meta: Any, children: list[Any]) -> str:
        return "keep_empty"

    def extraction(self, meta: Any, children: list[Any]) -> ast.Extraction:
        name, _, expr = children
        return ast.Extraction(str(name), None if expr is None else _string(expr))

    def regexp(self, meta: Any, children: list[Token]) -> ast.RegexpParser:
        return ast.RegexpParser(_string(children[0]), pos=meta.start_pos)

    def pattern(self, meta: Any, children: list[Token]) -> ast.PatternParser:
        return ast.PatternParser(_string(children[0]), pos=meta.start_pos)

    def unpack(self, meta: Any, children: list[Any]) -> ast.UnpackParser:
        return ast.UnpackParser(pos=meta.start_pos)

    def decolorize(self, meta: Any, children: list[Any]) -> ast.Decolorize:
        return ast.Decolorize(pos=meta.start_pos)

    def line_format(self, meta: Any, children: list[Token]) -> ast.LineFormat:
        return ast.LineFormat(_string(children[0]), pos=meta.start_pos)

    def label_format(self, meta: Any, children: list[ast.LabelFmt]) -> ast.LabelFormat:
        return ast.LabelFormat(tuple(children), pos=meta.start_pos)

    def rename(self, meta: Any, children: list[Token]) -> ast.LabelFmt:
        return ast.LabelFmt(str(children[0]), str(children[-1]), is_template=False)

    def template(self, meta: Any, children: list[Token]) -> ast.LabelFmt:
        return ast.LabelFmt(str(children[0]), _string(children[-1]), is_template=True)

    def drop(self, meta: Any, children: list[Any]) -> ast.Drop:
        return ast.Drop(tuple(children), pos=meta.start_pos)

    def keep(self, meta: Any, children: list[Any]) -> ast.Keep:
        return ast.Keep(tuple(children), pos=meta.start_pos)

    def drop_item(self, meta: Any, children: list[Any]) -> str | LabelMatcher:
        name, op, value = children
        return str(name) if op is None else _matcher(name, op, value)

    def unwrap(self, meta: Any, children: list[Any]) -> ast.Unwrap:
        label, conversion = children[0]
        return ast.Unwrap(label, conversion, pos=meta.start_pos)

    def unwrap_plain(self, meta: Any, children: list[Token]) -> tuple[str, str]:
        return str(children[0]), ""

    def unwrap_conv(self, meta: Any, children: list[Token]) -> tuple[str, str]:
        return str(children[1]), str(children[0])

    # label filters
    def label_filter_stage(self, meta: Any, children: list[Any]) -> ast.LabelFilterStage:
        return ast.LabelFilterStage(children[0], pos=meta.start_pos)

    def lf_or(self, meta: Any, children: list[Any]) -> ast.OrFilter:
        return ast.OrFilter(children[0], children[-1])

    def lf_and(self, meta: Any, children: list[Any]) -> ast.AndFilter:
        return ast.AndFilter(children[0], children[-1], "and")

    def lf_comma(self, meta: Any, children: list[Any]) -> ast.AndFilter:
        return ast.AndFilter(children[0], children[-1], ",")

    def lf_space(self, meta: Any, children: list[Any]) -> ast.AndFilter:
        return ast.AndFilter(children[0], children[-1], " ")

    def lf_paren(self, meta: Any, children: list[Any]) -> Any:
        return children[0]

    def lf_string(self, meta: Any, children: list[Token]) -> ast.StringFilter:
        return ast.StringFilter(_matcher(*children), pos=meta.start_pos)

    def _cmp(self, children: list[Token], what: str) -> tuple[str, str]:
        name, op = str(children[0]), str(children[1])
        if op not in _NUMERIC_OPS:
            _fail(f"operator {op} cannot compare a {what}; use one of > >= < <= == !=",
                  _pos(children[1]))  # fmt: skip
        return name, op

    def lf_number(self, meta: Any, children: list[Any]) -> ast.NumberFilter:
        name, op = self._cmp(children, "number")
        return ast.NumberFilter(name, op, children[2], pos=meta.start_pos)

    def lf_duration(self, meta: Any, children: list[Token]) -> ast.DurationFilter:
        name, op = self._cmp(children, "duration")
        return ast.DurationFilter(name, op, _duration(children[2]), pos=meta.start_pos)

    def lf_bytes(self, meta: Any, children: list[Token]) -> ast.BytesFilter:
        name, op = self._cmp(children, "byte size")
        try:
            size = parse_bytes(str(children[2]))
        except ValueError as exc:
            _fail(str(exc), _pos(children[2]))
        return ast.BytesFilter(name, op, size, pos=meta.start_pos)

    def lf_ip(self, meta: Any, children: list[Token]) -> ast.IpFilter:
        name, op, cidr = children
        if str(op) not in ("=", "!="):
            _fail(f"ip() takes = or !=, not {op}", _pos(op))
        return ast.IpFilter(str(name), str(op) == "!=", _string(cidr), pos=meta.start_pos)

    # -------------------------------------------------------------- ranges
    def _range(
        self, meta: Any, matchers: tuple[LabelMatcher, ...], stages: list[Any],
        range_token: Token, offset: int | None,
    ) -> ast.LogRange:  # fmt: skip
        unwrap: ast.Unwrap | None = None
        before: list[ast.Stage] = []
        after: list[ast.LabelFilter] = []
        for stage in stages:
            if isinstance(stage, ast.Unwrap):
                if unwrap is not None:
                    _fail("only one unwrap is allowed in a range", stage.pos)
                unwrap = stage
            elif unwrap is None:
                before.append(stage)
            elif isinstance(stage, ast.LabelFilterStage):
                after.append(stage.filter)
            else:
                _fail("only label filters may follow unwrap", _stage_pos(stage))
        if unwrap is not None and after:
            unwrap = ast.Unwrap(unwrap.label, unwrap.conversion, tuple(after), pos=unwrap.pos)
        log = ast.LogExpr(matchers, tuple(before), pos=meta.start_pos)
        return ast.LogRange(log, _duration(range_token), offset or 0, unwrap, pos=meta.start_pos)

    def range_after_selector(self, meta: Any, children: list[Any]) -> ast.LogRange:
        matchers, range_token, offset, *stages = children
        return self._range(meta, matchers, stages, range_token, offset)

    def range_after_pipeline(self, meta: Any, children: list[Any]) -> ast.LogRange:
        matchers, *stages, range_token, offset = children
        return self._range(meta, matchers, stages, range_token, offset)

    def range_after_paren(self, meta: Any, children: list[Any]) -> ast.LogRange:
        return self.range_after_pipeline(meta, children)

    def paren_range(self, meta: Any, children: list[Any]) -> ast.LogRange:
        return children[0]  # type: ignore[no-any-return]

    def offset(self, meta: Any, children: list[Token]) -> int:
        return _duration(children[0])

    # -------------------------------------------------------------- metric side
    def grouping(self, meta: Any, children: list[Any]) -> ast.Grouping:
        kind, labels = children
        return ast.Grouping(str(kind) == "without", _label_list(labels))

    def range_agg(self, meta: Any, children: list[Any]) -> ast.RangeAggregation:
        op, param, log_range, grouping = children
        value = None if param is None else _number(param)
        return ast.RangeAggregation(str(op), log_range, value, grouping, pos=meta.start_pos)

    def vector_param(self, meta: Any, children: list[Token]) -> float:
        return _number(children[0])

    def vector_agg_pre(self, meta: Any, children: list[Any]) -> ast.VectorAggregation:
        op, grouping, param, expr = children
        return ast.VectorAggregation(str(op), expr, param, grouping, grouping_first=True,
                                     pos=meta.start_pos)  # fmt: skip

    def vector_agg_post(self, meta: Any, children: list[Any]) -> ast.VectorAggregation:
        op, param, expr, grouping = children
        return ast.VectorAggregation(str(op), expr, param, grouping, pos=meta.start_pos)

    def binop(self, meta: Any, children: list[Any]) -> ast.BinaryOp:
        lhs, op, (return_bool, matching), rhs = children
        for side in (lhs, rhs):
            if isinstance(side, ast.LogExpr):
                _fail("a log query cannot be an operand; use a metric query such as "
                      "count_over_time(...)", side.pos)  # fmt: skip
        return ast.BinaryOp(str(op), lhs, rhs, return_bool, matching, pos=meta.start_pos)

    def bin_mod(self, meta: Any, children: list[Any]) -> tuple[bool, ast.VectorMatching | None]:
        flag, matching = children
        return flag is not None, matching

    def matching(self, meta: Any, children: list[Any]) -> ast.VectorMatching:
        kind, labels, group, include = children
        card = "one" if group is None else str(group).removeprefix("group_")
        return ast.VectorMatching(str(kind) == "on", _label_list(labels), card,
                                  _label_list(include))  # fmt: skip

    def label_list(self, meta: Any, children: list[Token]) -> Tree[Any]:
        return Tree("label_list", list(children))

    def literal(self, meta: Any, children: list[Any]) -> ast.NumberLiteral:
        return ast.NumberLiteral(children[0], pos=meta.start_pos)

    def signed_number(self, meta: Any, children: list[Any]) -> float:
        sign, number = children
        value = _number(number)
        return -value if sign is not None and str(sign) == "-" else value

    def vector(self, meta: Any, children: list[Any]) -> ast.VectorLiteral:
        return ast.VectorLiteral(children[0], pos=meta.start_pos)

    def label_replace(self, meta: Any, children: list[Any]) -> ast.LabelReplace:
        expr, dst, replacement, src, regex = children
        return ast.LabelReplace(expr, _string(dst), _string(replacement), _string(src),
                                _string(regex), pos=meta.start_pos)  # fmt: skip

    def paren_metric(self, meta: Any, children: list[Any]) -> Any:
        inner = children[0]
        if isinstance(inner, ast.LogExpr):
            return inner
        return inner


def _stage_pos(stage: Any) -> int:
    return int(getattr(stage, "pos", -1))


def _expected(tokens: set[str]) -> str:
    words = sorted(
        {_TOKEN_WORDS.get(t, t.strip("_").lower() if t.isupper() else t) for t in tokens}
    )
    return ", ".join(words[:8]) + (", ..." if len(words) > 8 else "")


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "end of query"
    word = _TOKEN_WORDS.get(token.type)
    return (
        f"{word} {str(token)!r}" if word in ("IDENTIFIER", "STRING", "NUMBER") else repr(str(token))
    )


def parse(query: str) -> ast.Expr:
    """The syntax tree of ``query`` (a log or metric query); LogQLParseError otherwise."""
    if len(query) > MAX_QUERY_CHARS:
        raise LogQLParseError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    if not query.strip():
        raise LogQLParseError("syntax error: empty query", query=query, pos=0)
    try:
        tree = _parser().parse(query)
        result: ast.Expr = _ToAst().transform(tree)
    except UnexpectedToken as exc:
        expected = _expected(set(exc.expected))
        message = f"syntax error: unexpected {_describe(exc.token)}"
        pos = exc.token.start_pos if exc.token.type != "$END" else len(query)
        raise LogQLParseError(f"{message}, expecting {expected}", query=query,
                              pos=pos if pos is not None else len(query)) from None  # fmt: skip
    except UnexpectedCharacters as exc:
        at = exc.pos_in_stream if exc.pos_in_stream is not None else 0
        char = query[at] if at < len(query) else ""
        raise LogQLParseError(f"syntax error: unexpected character {char!r}", query=query,
                              pos=at) from None  # fmt: skip
    except UnexpectedInput as exc:
        raise LogQLParseError(f"syntax error: {exc}", query=query,
                              pos=getattr(exc, "pos_in_stream", 0) or 0) from None  # fmt: skip
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, _FailError):
            raise LogQLParseError(inner.message, query=query, pos=max(inner.pos, 0)) from None
        raise LogQLParseError(f"cannot read the query: {inner}", query=query, pos=0) from None
    except (LarkError, RecursionError) as exc:
        raise LogQLParseError(f"cannot read the query: {exc}", query=query, pos=0) from None
    if isinstance(result, ast.LogRange):  # a bare range vector is not a query
        raise LogQLParseError("a range like [5m] needs a range aggregation around it, e.g. "
                              "count_over_time(...)", query=query, pos=result.pos)  # fmt: skip
    return result
