"""LogQL, Grafana Loki's query language: parse, print and validate (execution comes next).

``parse(text)`` gives the syntax tree (:mod:`logpipe.logql.ast`), ``format_query(tree)``
prints it back in a canonical spelling (``parse(format_query(q)) == q``), and
``validate(tree)`` applies the rules Loki checks after parsing. ``parse_query`` does both.
"""

from __future__ import annotations

from logpipe.logql.ast import Expr
from logpipe.logql.parser import parse
from logpipe.logql.printer import format_query
from logpipe.logql.validate import validate

__all__ = ["format_query", "parse", "parse_query", "validate"]


def parse_query(text: str) -> Expr:
    """Parse and validate: the tree of a query Loki would accept, else a LogQLError."""
    expr = parse(text)
    validate(expr, text)
    return expr
