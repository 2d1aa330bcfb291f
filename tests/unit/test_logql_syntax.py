"""LogQL parse -> print -> parse, case by case: every construct of the language."""

from __future__ import annotations

import pytest

from logpipe.errors import LogQLParseError, LogQLValidationError
from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast, format_query, parse, parse_query, validate

# Every construct the issue lists, each in at least one query. Each must parse, print,
# parse back to the same tree, and validate.
VALID = [
    # stream selectors
    '{app="foo"}',
    '{app="foo", env!="dev", host=~"n[0-9]+", region!~"eu-.*"}',
    '{app="foo",}',
    "{app=`raw\\string`}",
    # line filters, `or`, backticks, ip(), pattern filters
    '{app="foo"} |= "error" != "timeout" |~ "5[0-9]{2}" !~ `(?i)debug`',
    '{app="foo"} |= "a" or "b" or `c`',
    '{app="foo"} |= ip("192.168.0.0/16") != ip("10.0.0.1-10.0.0.9")',
    '{app="foo"} |> "<_> GET <_>" !> "<_> health <_>"',
    # parsers
    '{app="foo"} | json',
    '{app="foo"} | json first="servers[0]", ua="request.headers[\\"User-Agent\\"]", status',
    '{app="foo"} | logfmt',
    '{app="foo"} | logfmt --strict --keep-empty level, msg="message"',
    '{app="foo"} | regexp "(?P<method>\\\\w+) (?P<path>\\\\S+)"',
    '{app="foo"} | pattern "<ip> - - <_> \\"<method> <uri> <_>\\" <status>"',
    '{app="foo"} | unpack | decolorize',
    # label filters: string, number, duration, bytes, ip; and / , / space / or / parens
    '{app="foo"} | json | level="error" | status >= 500 | latency > 1.5s | size <= 10KiB',
    '{app="foo"} | logfmt | level=~"warn|error" and status != 200, method="GET" user!=""',
    '{app="foo"} | json | (status = 500 or status == 503) and duration < 250ms',
    '{app="foo"} | logfmt | addr = ip("10.0.0.0/8") or addr != ip("::1")',
    '{app="foo"} | json | a > -1.25e3 | b = 0x1F | c >= 2h45m | d < 1.5MB',
    '{app="foo"} | json | __error__="" | __error__!="JSONParserErr"',
    # formatting and label management
    '{app="foo"} | json | line_format "{{.level}} {{ .msg | ToUpper }}"',
    '{app="foo"} | logfmt | label_format dst=src, msg="{{.a}}-{{.b}}"',
    '{app="foo"} | json | drop level, method="GET", path=~"/health.*"',
    '{app="foo"} | json | keep level, status',
    # range aggregations over lines
    'count_over_time({app="foo"}[5m])',
    'rate({app="foo"} |= "error" [1m])',
    'bytes_over_time({app="foo"}[1h] offset 30m)',
    'bytes_rate(({app="foo"} |= "x")[10s])',
    'absent_over_time({app="foo"} |= "heartbeat" [15m])',
    'count_over_time({app="foo"}[5m] |= "error" | json)',
    # range aggregations over unwrapped values (with grouping)
    'sum_over_time({app="foo"} | json | unwrap bytes [5m])',
    'avg_over_time({app="foo"} | logfmt | unwrap duration(latency) [5m]) by (path)',
    'max_over_time({app="foo"} | json | unwrap bytes(size) | __error__="" [1m]) without (pod)',
    'min_over_time({app="foo"} | json | unwrap duration_seconds(t) [5m])',
    'stddev_over_time({app="foo"} | json | unwrap x [5m])',
    'stdvar_over_time({app="foo"} | json | unwrap x [5m])',
    'quantile_over_time(0.99, {app="foo"} | json | unwrap latency [5m]) by (host)',
    'first_over_time({app="foo"} | json | unwrap x [5m])',
    'last_over_time({app="foo"} | json | unwrap x [5m] offset 1h)',
    'rate_counter({app="foo"} | json | unwrap requests_total [5m])',
    'rate({app="foo"} | json | unwrap bytes [5m])',
    # vector aggregations, by/without before or after
    'sum by (host) (rate({app="foo"}[5m]))',
    'sum(rate({app="foo"}[5m])) by (host, path)',
    'avg without (pod) (count_over_time({app="foo"}[5m]))',
    'min(rate({app="foo"}[5m]))',
    'max by () (rate({app="foo"}[5m]))',
    'count(rate({app="foo"}[5m]))',
    'stddev(rate({app="foo"}[5m]))',
    'stdvar(rate({app="foo"}[5m]))',
    'topk(5, sum by (host) (rate({app="foo"}[5m])))',
    'bottomk(3, rate({app="foo"}[5m])) by (level)',
    'sort(rate({app="foo"}[5m]))',
    'sort_desc(sum(count_over_time({app="foo"}[1h])) by (host))',
    # binary operators, bool, vector matching, literals
    'sum(rate({app="foo"}[5m])) / sum(rate({app="bar"}[5m]))',
    'rate({app="foo"}[5m]) * 100 + 1 - 2 % 3 ^ 2',
    'rate({app="foo"}[5m]) > bool 10',
    'sum by (host) (rate({app="foo"}[5m])) / on (host) group_left (zone) '
    'sum by (host, zone) (rate({app="bar"}[5m]))',
    'rate({app="foo"}[5m]) + ignoring (level) group_right rate({app="bar"}[5m])',
    'rate({app="foo"}[5m]) and rate({app="bar"}[5m]) or rate({app="baz"}[5m]) '
    "unless on () vector(0)",
    'rate({app="foo"}[5m]) == 0 or vector(0)',
    "1 + 2 * 3",
    "-1.5e-3",
    "2 > bool 1",
    # label_replace, vector()
    'label_replace(rate({app="foo"}[5m]), "svc", "$1", "app", "(.*)-.*")',
    "vector(1)",
    "vector(-3.5)",
    # comments and layout
    '# errors per host\nsum by (host) (\n  rate({app="foo"} |= "error" [5m])  # the rate\n)',
]


@pytest.mark.parametrize("query", VALID)
def test_every_construct_parses_prints_and_validates(query: str) -> None:
    tree = parse(query)
    printed = format_query(tree)
    again = parse(printed)
    assert again == tree, printed
    assert format_query(again) == printed  # canonical: printing is a fixed point
    validate(tree, query)


def test_trees_hold_the_values_not_the_spelling() -> None:
    tree = parse('{app="foo"} | json | latency > 1m30s | size >= 1.5KiB | status = 200')
    assert isinstance(tree, ast.LogExpr)
    assert tree.matchers == (LabelMatcher("app", MatchOp.EQ, "foo"),)
    _, (stage_latency, stage_size, stage_status) = tree.stages[0], tree.stages[1:]
    assert isinstance(stage_latency, ast.LabelFilterStage)
    assert stage_latency.filter == ast.DurationFilter("latency", ">", 90_000_000_000)
    assert isinstance(stage_size, ast.LabelFilterStage)
    assert stage_size.filter == ast.BytesFilter("size", ">=", 1536)
    assert isinstance(stage_status, ast.LabelFilterStage)
    assert stage_status.filter == ast.NumberFilter("status", "=", 200.0)
    assert parse("{a=`x\\y`}") == parse('{a="x\\\\y"}')


def test_a_number_then_a_label_starting_with_b_is_not_a_bytes_literal() -> None:
    """Loki's lexer reads a bytes literal only when the unit touches the number: ``0 b_``
    is the number 0 followed by the label ``b_`` (two filters joined by whitespace), and the
    printer's output of such a chain must read back as the same tree (found by Hypothesis)."""
    tree = parse('{a=""} | x > 0 b_ > 0s')
    assert isinstance(tree, ast.LogExpr)
    chain = tree.stages[0]
    assert isinstance(chain, ast.LabelFilterStage)
    assert parse(format_query(tree)) == tree
    assert "NumberFilter" in repr(chain.filter) and "DurationFilter" in repr(chain.filter)


def test_range_and_unwrap_placement() -> None:
    a = parse(
        'sum_over_time({app="foo"} | json | unwrap bytes(size) | __error__="" [5m] offset 1m)'
    )
    b = parse('sum_over_time({app="foo"}[5m] offset 1m | json | unwrap bytes(size) | __error__="")')
    assert a == b
    assert isinstance(a, ast.RangeAggregation)
    assert a.range.range_nanos == 300_000_000_000 and a.range.offset_nanos == 60_000_000_000
    assert a.range.unwrap == ast.Unwrap(
        "size", "bytes", (ast.StringFilter(LabelMatcher("__error__", MatchOp.EQ, "")),)
    )
    # `bytes` without a parenthesis is a label called bytes
    plain = parse('sum_over_time({app="foo"} | unwrap bytes [1m])')
    assert isinstance(plain, ast.RangeAggregation) and plain.range.unwrap is not None
    assert plain.range.unwrap.label == "bytes" and plain.range.unwrap.conversion == ""


def test_precedence_follows_prometheus() -> None:
    tree = parse("1 + 2 * 3 ^ 2 ^ 2 == bool 4 or 5")
    assert isinstance(tree, ast.BinaryOp) and tree.op == "or"
    cmp_ = tree.lhs
    assert isinstance(cmp_, ast.BinaryOp) and cmp_.op == "==" and cmp_.return_bool
    add = cmp_.lhs
    assert isinstance(add, ast.BinaryOp) and add.op == "+"
    mul = add.rhs
    assert isinstance(mul, ast.BinaryOp) and mul.op == "*"
    power = mul.rhs
    assert isinstance(power, ast.BinaryOp) and power.op == "^"
    assert isinstance(power.rhs, ast.BinaryOp) and power.rhs.op == "^"  # right-associative
    label_filters = parse('{a="b"} | x="1" or y="2" and z="3"')
    assert isinstance(label_filters, ast.LogExpr)
    stage = label_filters.stages[0]
    assert isinstance(stage, ast.LabelFilterStage) and isinstance(stage.filter, ast.OrFilter)


BAD_SYNTAX = [
    ('{app="foo"', 1, 11, "expecting"),
    ("{app=foo}", 1, 6, "unexpected IDENTIFIER 'foo', expecting STRING"),
    ('{app="foo"} |= "bad \\q"', 1, 21, "unknown escape sequence"),
    ('rate({app="foo"})', 1, 17, "expecting"),
    ('{app="foo"}[5m]', 1, 12, "unexpected '[5m]'"),
    ('{app="foo"} | unwrap x', 1, 13, "unwrap is only allowed in a range aggregation"),
    (
        'sum_over_time({app="foo"} | unwrap x | json [5m])',
        1,
        40,
        "only label filters may follow unwrap",
    ),
    ('{app="foo"} | status =~ 5', 1, 22, "cannot compare a number"),
    ('{app="foo"} | addr > ip("1.2.3.4")', 1, 22, "unexpected 'ip'"),
    ('sum(rate({app="foo"}[5m]) by (x)', 1, 33, "end of query"),
    ('{app="foo"}\n  | json\n  | @', 3, 5, "unexpected character '@'"),
    ('{app="foo"} + 1', 1, 13, "unexpected"),
    ("", 1, 1, "empty query"),
    ('count_over_time({app="foo"}[5x])', 1, 28, "invalid duration"),
]


@pytest.mark.parametrize(("query", "line", "column", "message"), BAD_SYNTAX)
def test_syntax_errors_name_line_and_column(
    query: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(LogQLParseError) as err:
        parse(query)
    assert (err.value.line, err.value.column) == (line, column), str(err.value)
    assert message in str(err.value)
    assert str(err.value).startswith(f"parse error at line {line}, col {column}: ")


INVALID = [
    ('{app=~".*"}', "at least one regexp or equality matcher"),
    ('{env=""}', "at least one regexp or equality matcher"),
    ("{}", "at least one regexp or equality matcher"),
    ('sum_over_time({app="foo"}[5m])', "invalid aggregation sum_over_time without unwrap"),
    (
        'count_over_time({app="foo"} | unwrap x [5m])',
        "invalid aggregation count_over_time with unwrap",
    ),
    ('count_over_time({app="foo"}[5m]) by (x)', "grouping not allowed for count_over_time"),
    ('quantile_over_time({app="foo"} | unwrap x [5m])', "needs a quantile"),
    ('rate(0.5, {app="foo"}[5m])', "takes no parameter"),
    ('topk(0, rate({app="foo"}[5m]))', "greater than 0"),
    ('topk(1.5, rate({app="foo"}[5m]))', "greater than 0"),
    ('topk(rate({app="foo"}[5m]))', "needs a parameter"),
    ('sum(2, rate({app="foo"}[5m]))', "unsupported parameter"),
    ('sort by (x) (rate({app="foo"}[5m]))', "grouping not allowed for sort"),
    ('rate({app="foo"}[5m]) + bool 1', "bool modifier can only be used on comparison"),
    ("1 > 2", "comparisons between scalars must use BOOL"),
    ('rate({app="foo"}[5m]) and on (a) group_left rate({app="b"}[5m])', "no grouping allowed"),
    ('{app="foo"} |~ "(unclosed"', "invalid regular expression"),
    ('{app="foo"} | regexp "(.*)"', "at least one named capture"),
    ('{app="foo"} | regexp "(?P<x>a)|(?P<x>b)"', "duplicate extracted label name 'x'"),
    ('{app="foo"} | regexp "(?P<x>a)(?P<y>b)(?P<x>c)"', "duplicate extracted label name 'x'"),
    ('{app="foo"} | pattern "<_> only"', "at least one capture"),
    ('{app="foo"} |= ip("999.0.0.1")', "invalid ip address"),
    (
        'label_replace(rate({app="foo"}[5m]), "1bad", "$1", "app", "(.*)")',
        "invalid destination label",
    ),
    ('count_over_time({app="foo"}[0s])', "invalid range"),
    ('{app="foo"} | line_format "{{ nosuch .a }}"', "invalid template"),
    ('{app="foo"} | label_format a="{{ if .b }}"', "invalid template"),
]


@pytest.mark.parametrize(("query", "message"), INVALID)
def test_invalid_queries_are_rejected_with_loki_wording(query: str, message: str) -> None:
    tree = parse(query)
    with pytest.raises(LogQLValidationError, match="parse error at line 1, col") as err:
        validate(tree, query)
    assert message in str(err.value)
    with pytest.raises(LogQLValidationError):
        parse_query(query)


def test_bad_label_regex_is_a_parse_error_at_the_matcher() -> None:
    with pytest.raises(LogQLParseError) as err:
        parse('{app="foo", env=~"("}')
    assert err.value.column == 13 and "invalid regular expression" in str(err.value)
