"""The early stop: a reply ends once it holds a complete query and the next line does not
continue it; never inside a string or an open bracket."""

from __future__ import annotations

import pytest

from logpipe.nl.complete import balanced, reply_end
from logpipe.nl.repair import extract_query


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ('{a="b"} |= "x"\nThis query counts', '{a="b"} |= "x"'),
        ('sum(rate({a="b"}[5m]))\n\nQ: next', 'sum(rate({a="b"}[5m]))'),
        ('{a="b"}\n|= "x"\nSo this', '{a="b"}\n|= "x"'),  # a pipe on the next line continues
        ('sum by (h) (\n  rate({a="b"}[5m])\n)\nDone', 'sum by (h) (\n  rate({a="b"}[5m])\n)'),
        ('sum(rate({a="b"}[5m]))\nby (h)\nend', 'sum(rate({a="b"}[5m]))\nby (h)'),
        ('```logql\n{a="b"}\n```\nexplained', '```logql\n{a="b"}'),
        ('{a="b"}\nQ: another question', '{a="b"}'),
        ('The answer is {a="b"}\nMore text', 'The answer is {a="b"}'),  # prose lines end too
    ],
)
def test_a_complete_query_ends_the_reply(text: str, query: str) -> None:
    end = reply_end(text)
    assert end is not None
    assert text[:end] == query
    assert extract_query(text[:end]) == extract_query(query)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        '{a="b"} |= "x',  # no line break yet
        '{a="b"} |= "x\ny',  # the line break is inside a string
        'sum(rate({a="b"}[5m])\n',  # an open bracket: the query goes on
        '{a="b"}\n',  # the next line has not started
        '{a="b"}\n  ',
        '{a="b"}\nb',  # "b" may be the start of "by"
        "```logql",
        "```logql\n",
    ],
)
def test_an_incomplete_reply_goes_on(text: str) -> None:
    assert reply_end(text) is None


def test_balance_ignores_brackets_in_strings() -> None:
    assert balanced('{a="("} |~ "[x"')
    assert not balanced('{a="b"} |= "x')
    assert not balanced("sum(rate(")
    assert balanced("a)")  # an extra closer is the repair's business, not a reason to go on


def test_every_prefix_is_decided_once_and_for_good() -> None:
    """Generating token by token, the first prefix with an end is where the reply stops;
    the end found then is the same as for the whole text."""
    text = 'sum by (host) (count_over_time({app="x"} |= "a\\nb" [5m]))\nThis counts lines.'
    ends = [reply_end(text[:i]) for i in range(len(text) + 1)]
    first = next(i for i, e in enumerate(ends) if e is not None)
    assert ends[first] == text.index(")\nThis") + 1
    assert all(e == ends[first] for e in ends[first:])
