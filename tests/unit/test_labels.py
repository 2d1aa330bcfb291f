"""Label sets, matchers and Go string literals (the rules every stream selection shares)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.labels import (
    LabelError,
    LabelMatcher,
    MatchOp,
    format_labels,
    match_all,
    parse_labels,
    stream_id,
)
from logpipe.quoting import QuoteError, go_quote, go_unquote

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@given(_TEXT)
@settings(max_examples=500, deadline=None)
def test_go_quote_reads_back(text: str) -> None:
    assert go_unquote(go_quote(text)) == text


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"plain"', "plain"),
        (r'"tab\there"', "tab\there"),
        (r'"\u00e9\U0001F600\x41\101\\\""', 'é\U0001f600AA\\"'),
        ("`raw \\n stays`", "raw \\n stays"),
        ('""', ""),
    ],
)
def test_go_unquote(literal: str, value: str) -> None:
    assert go_unquote(literal) == value


@pytest.mark.parametrize(
    ("literal", "offset"),
    [('"bad \\q"', 5), ('"open', 0), ('"a"b"', 2), ('"\\x4"', 1), ('"\\ud800"', 1), ("'x'", 0)],
)
def test_go_unquote_errors_name_the_offset(literal: str, offset: int) -> None:
    with pytest.raises(QuoteError) as err:
        go_unquote(literal)
    assert err.value.offset == offset


def test_go_quote_matches_go() -> None:
    assert go_quote('a"b\\c\n\x01é\u200b') == '"a\\"b\\\\c\\n\\x01é\\u200b"'


@given(
    st.dictionaries(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True), _TEXT, max_size=5)
)
@settings(max_examples=300, deadline=None)
def test_label_sets_read_back(labels: dict[str, str]) -> None:
    text = format_labels(labels)
    assert parse_labels(text) == labels
    assert stream_id(parse_labels(text)) == stream_id(labels)


def test_label_set_text_is_sorted_and_quoted() -> None:
    assert format_labels({"b": "2", "a": 'x"y'}) == '{a="x\\"y", b="2"}'
    assert parse_labels('app="hdfs",  host = "n1" ') == {"app": "hdfs", "host": "n1"}
    assert parse_labels("{}") == {}


@pytest.mark.parametrize(
    ("text", "offset"),
    [('{app="x"', 8), ('{1app="x"}', 1), ('{app "x"}', 5), ("{app=x}", 5),
     ('{a="1" b="2"}', 7), ('{a="1", a="2"}', 8), ('{a="\\q"}', 4)],
)  # fmt: skip
def test_bad_label_sets_name_the_offset(text: str, offset: int) -> None:
    with pytest.raises(LabelError) as err:
        parse_labels(text)
    assert err.value.offset == offset


def test_matchers_follow_prometheus_semantics() -> None:
    stream = {"app": "hdfs", "host": "n1"}
    assert LabelMatcher("app", MatchOp.EQ, "hdfs").matches(stream)
    assert LabelMatcher("app", MatchOp.RE, "hd.*").matches(stream)
    assert not LabelMatcher("app", MatchOp.RE, "hd").matches(stream)  # anchored
    assert LabelMatcher("app", MatchOp.NRE, "hd").matches(stream)
    assert LabelMatcher("env", MatchOp.EQ, "").matches(stream)  # missing reads as ""
    assert not LabelMatcher("env", MatchOp.NE, "").matches(stream)
    assert LabelMatcher("env", MatchOp.RE, ".*").matches_empty()
    assert match_all(
        [LabelMatcher("app", MatchOp.EQ, "hdfs"), LabelMatcher("host", MatchOp.NE, "n2")], stream
    )
    assert LabelMatcher("app", MatchOp.RE, "a|hdfs").match_values(["hdfs", "a", "b"]) == [
        True,
        True,
        False,
    ]
    assert str(LabelMatcher("app", MatchOp.NRE, 'x"y')) == 'app!~"x\\"y"'


def test_bad_matchers_are_label_errors() -> None:
    with pytest.raises(LabelError, match="regular expression"):
        LabelMatcher("app", MatchOp.RE, "(")
    with pytest.raises(LabelError, match="label name"):
        LabelMatcher("1app", MatchOp.EQ, "x")
