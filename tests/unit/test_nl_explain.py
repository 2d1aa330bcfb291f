"""Explanations are read off the syntax tree: one deterministic sentence that names the
selector, every line filter, the window and the grouping, for every shape of query."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.logql import parse_query
from logpipe.nl.explain import explain
from logpipe.nl.synth import generate
from logpipe.nl.tree import line_filters, selector_matchers
from tests.logqltest import parse_script
from tests.nlfakes import webshop_logs


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ('sum by (host) (count_over_time({app="x"} |= "y" [5m]))',
         'Counts lines of {app="x"} containing "y" per 5m, by host.'),
        ('sum(count_over_time({app="x"} |= "y" [1h]))',
         'Counts lines of {app="x"} containing "y" per 1h, in total.'),
        ('{app="x"} |= "a" or "b" != "c" | logfmt | status >= 500',
         'Lists lines of {app="x"} containing "a" or "b", not containing "c", parsed as '
         "logfmt, where status >= 500."),
        ('topk(3, sum by (ip) (count_over_time({app="x"} | regexp "(?P<ip>\\\\S+)" [1h])))',
         'The 3 largest series of: counts lines of {app="x"} with ip extracted by a regexp '
         "per 1h, by ip."),
        ('count(sum by (user) (count_over_time({app="x"} | regexp "u=(?P<user>\\\\w+)" [1d])))',
         'The number of distinct user values in lines of {app="x"} with user extracted by a '
         "regexp per 24h."),
        ('quantile_over_time(0.95, {app="x"} | json | unwrap bytes(size) [10m])',
         'The 95th percentile of bytes(size) in lines of {app="x"} parsed as JSON per 10m.'),
        ('sum by (h) (rate({app="x"}[1m])) > 10',
         'The per-second rate of lines of {app="x"} per 1m, by h, only where above 10.'),
        ('rate({app="x"}[5m] offset 1h)',
         'The per-second rate of lines of {app="x"} per 5m, 1h earlier.'),
    ],
)  # fmt: skip
def test_shapes_read_as_english(query: str, text: str) -> None:
    assert explain(parse_query(query)) == text


def test_every_synthetic_shape_is_explained_from_its_parts() -> None:
    pairs = generate([webshop_logs()], seed=3)
    assert len({p.query.split("(")[0] for p in pairs}) >= 4  # several shapes
    for pair in pairs:
        expr = parse_query(pair.query)
        text = explain(expr)
        assert text == explain(parse_query(pair.query))  # deterministic
        assert "\n" not in text and text.endswith(".") and text[0].isupper()
        assert pair.query not in text  # never the query handed back as its own explanation
        for matcher in selector_matchers(expr):
            assert str(matcher) in text
        for node in line_filters(expr):
            for value in node.values:
                assert f'"{value}"' in text


def test_every_golden_query_reads_as_one_sentence() -> None:
    golden = Path(__file__).parent.parent / "golden" / "logql"
    explained = 0
    for path in sorted(golden.glob("*.logqltest")):
        script = parse_script(path.read_text(), base=golden)
        for case in script.cases:
            if case.kind == "error":
                continue
            text = explain(parse_query(case.query))
            assert "\n" not in text and text.endswith("."), case.query
            assert next(c for c in text if c.isalpha()).isupper() or text[0].isdigit()
            explained += 1
    assert explained >= 50
