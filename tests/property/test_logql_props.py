"""LogQL properties: any text parses or fails cleanly; any tree prints and reads back."""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.errors import LogQLError, LogQLParseError
from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast, format_query, parse, validate

_TOKENS = st.sampled_from(
    ["{", "}", "(", ")", "[5m]", ",", "|", "|=", "!=", "|~", "!~", "|>", "=", "=~", ">", ">=",
     "==", "<", "+", "-", "*", "/", "^", "%", "and", "or", "unless", "bool", "on", "ignoring",
     "group_left", "by", "without", "offset", "1h", "5", "0.5", "10KB", "1.5s", '"x"', "`y`",
     '"\\q"', "app", "json", "logfmt", "regexp", "pattern", "unpack", "unwrap", "bytes",
     "duration", "line_format", "label_format", "drop", "keep", "decolorize", "ip", "rate",
     "count_over_time", "quantile_over_time", "sum", "topk", "sort", "vector", "label_replace",
     "#c\n", "\n", "@", "é", "--strict"]
)  # fmt: skip


@given(st.lists(_TOKENS, max_size=25))
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_token_soup_parses_or_fails_with_a_parse_error(tokens: list[str]) -> None:
    query = " ".join(tokens)
    try:
        tree = parse(query)
    except LogQLParseError as err:
        assert err.line >= 1 and err.column >= 1
        return
    with contextlib.suppress(LogQLError):  # validation errors are fine; crashes are not
        validate(tree, query)
    assert parse(format_query(tree)) == tree


@given(st.text(max_size=60))
@settings(max_examples=1500, deadline=None)
def test_any_text_parses_or_fails_with_a_parse_error(query: str) -> None:
    with contextlib.suppress(LogQLParseError):
        parse(query)


# ----------------------------------------------------------------- random trees
_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in {"or", "and", "unless", "bool", "by", "without", "on", "ignoring",
                        "offset", "ip", "json", "logfmt", "regexp", "pattern", "unpack",
                        "unwrap", "decolorize", "line_format", "label_format", "drop", "keep"}
)  # fmt: skip
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_REGEX = st.sampled_from(["a.*", "[0-9]+", "x|y", "(?i)err", "", ".+"])


@st.composite
def _matcher(draw: st.DrawFn) -> LabelMatcher:
    op = draw(st.sampled_from(list(MatchOp)))
    value = draw(_REGEX if op in (MatchOp.RE, MatchOp.NRE) else _TEXT)
    return LabelMatcher(draw(_NAME), op, value)


_NUMBER = st.one_of(st.integers(-10**6, 10**6).map(float),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))  # fmt: skip
_CMP = st.sampled_from([">", ">=", "<", "<=", "==", "=", "!="])

_leaf_filter = st.one_of(
    st.builds(ast.StringFilter, _matcher()),
    st.builds(ast.NumberFilter, _NAME, _CMP, _NUMBER),
    st.builds(ast.DurationFilter, _NAME, _CMP, st.integers(0, 10**15)),
    st.builds(ast.BytesFilter, _NAME, _CMP, st.integers(0, 10**12)),
    st.builds(ast.IpFilter, _NAME, st.booleans(), st.sampled_from(["10.0.0.0/8", "::1"])),
)
_label_filter = st.recursive(
    _leaf_filter,
    lambda inner: st.one_of(
        st.builds(ast.AndFilter, inner, inner, st.sampled_from(["and", ",", " "])),
        st.builds(ast.OrFilter, inner, inner),
    ),
    max_leaves=5,
)
_extraction = st.builds(ast.Extraction, _NAME, st.one_of(st.none(), _TEXT))
_items = st.lists(st.one_of(_NAME, _matcher()), min_size=1, max_size=3).map(tuple)
_stage = st.one_of(
    st.builds(ast.LineFilter, st.sampled_from(["|=", "!=", "|~", "!~", "|>", "!>"]),
              st.lists(st.one_of(_TEXT, st.builds(ast.IpValue, st.just("1.2.3.4"))),
                       min_size=1, max_size=3).map(tuple)),
    st.builds(ast.JsonParser, st.lists(_extraction, max_size=2).map(tuple)),
    st.builds(ast.LogfmtParser, st.booleans(), st.booleans(),
              st.lists(_extraction, max_size=2).map(tuple)),
    st.builds(ast.RegexpParser, _TEXT),
    st.builds(ast.PatternParser, _TEXT),
    st.builds(ast.UnpackParser),
    st.builds(ast.Decolorize),
    st.builds(ast.LineFormat, _TEXT),
    st.builds(ast.LabelFormat, st.lists(
        st.one_of(st.builds(ast.LabelFmt, _NAME, _NAME, st.just(False)),
                  st.builds(ast.LabelFmt, _NAME, _TEXT, st.just(True))),
        min_size=1, max_size=2).map(tuple)),
    st.builds(ast.Drop, _items),
    st.builds(ast.Keep, _items),
    st.builds(ast.LabelFilterStage, _label_filter),
)  # fmt: skip


def _expressible(stages: list[ast.Stage]) -> bool:
    """LogQL's one ambiguity: `| drop a != "x"` is a matcher, never a drop and a line filter
    (Loki reads it so too), so that sequence of stages has no spelling."""
    for first, second in itertools.pairwise(stages):
        if (
            isinstance(first, ast.Drop | ast.Keep)
            and isinstance(first.items[-1], str)
            and isinstance(second, ast.LineFilter)
            and second.op in ("!=", "!~")
        ):
            return False
    return True


_log = st.builds(
    ast.LogExpr,
    st.lists(_matcher(), min_size=1, max_size=3).map(tuple),
    st.lists(_stage, max_size=4).filter(_expressible).map(tuple),
)
_unwrap = st.builds(
    ast.Unwrap, _NAME, st.sampled_from(["", "bytes", "duration", "duration_seconds"]),
    st.lists(_label_filter, max_size=2).map(tuple),
)  # fmt: skip
_range = st.builds(
    ast.LogRange, _log, st.integers(1, 10**14), st.integers(0, 10**13),
    st.one_of(st.none(), _unwrap),
)  # fmt: skip
_grouping = st.builds(ast.Grouping, st.booleans(), st.lists(_NAME, max_size=3).map(tuple))
_range_agg = st.builds(
    ast.RangeAggregation,
    st.sampled_from(["count_over_time", "rate", "sum_over_time", "quantile_over_time"]),
    _range,
    st.one_of(st.none(), st.floats(0, 1)),
    st.one_of(st.none(), _grouping),
)
_matching = st.builds(
    ast.VectorMatching, st.booleans(), st.lists(_NAME, max_size=2).map(tuple),
    st.sampled_from(["one", "left", "right"]), st.lists(_NAME, max_size=2).map(tuple),
).map(lambda m: m if m.card != "one" else ast.VectorMatching(m.on, m.labels))  # fmt: skip
_metric = st.recursive(
    st.one_of(_range_agg, st.builds(ast.NumberLiteral, _NUMBER),
              st.builds(ast.VectorLiteral, _NUMBER)),
    lambda inner: st.one_of(
        st.builds(ast.VectorAggregation, st.sampled_from(["sum", "topk", "sort", "avg"]), inner,
                  st.one_of(st.none(), st.integers(1, 9).map(float)),
                  st.one_of(st.none(), _grouping), grouping_first=st.booleans()),
        st.builds(ast.BinaryOp, st.sampled_from(["+", "-", "*", "/", "%", "^", "==", ">", "and",
                                                 "or", "unless"]),
                  inner, inner, st.booleans(), st.one_of(st.none(), _matching)),
        st.builds(ast.LabelReplace, inner, _NAME, _TEXT, _NAME, _REGEX),
    ),
    max_leaves=4,
)  # fmt: skip


@given(st.one_of(_log, _metric))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_tree_prints_and_reads_back(tree: ast.Expr) -> None:
    text = format_query(tree)
    assert parse(text) == tree, text
