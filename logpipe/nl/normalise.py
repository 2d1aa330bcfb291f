"""One spelling per query: what "exact match after normalisation" compares, and what the
model is trained to write.

A query is normalised by parsing and validating it with our LogQL parser, then rewriting
the parts of the tree that do not change its meaning to one canonical form, and printing it
with :func:`~logpipe.logql.format_query`:

* the matchers of a stream selector are sorted (and duplicates dropped): ``{a="1", b="2"}``
  and ``{b="2", a="1"}`` select the same streams;
* ``a="x", b="y"`` and ``a="x" b="y"`` (label filters joined by a comma or a space) become
  ``a="x" and b="y"``;
* vector aggregations print their grouping first (``sum by (a) (...)``), as Loki's docs do.

Two queries are the same when their normalised trees are equal (positions are ignored by
the tree's ``==``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from logpipe.logql import ast, format_query, parse_query

__all__ = ["canonical", "normalise_query", "same_query"]

_T = TypeVar("_T")


def canonical(node: _T) -> _T:
    """``node`` with selector matchers sorted, label-filter joins spelled ``and`` and
    groupings printed first; every other part unchanged."""
    return _canon(node)  # type: ignore[no-any-return]


def _canon(node: Any) -> Any:
    if isinstance(node, tuple):
        return tuple(_canon(item) for item in node)
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return node
    changes = {f.name: _canon(getattr(node, f.name)) for f in dataclasses.fields(node)}
    if isinstance(node, ast.LogExpr):
        changes["matchers"] = tuple(sorted(set(changes["matchers"]), key=str))
    elif isinstance(node, ast.AndFilter):
        changes["sep"] = "and"
    elif isinstance(node, ast.VectorAggregation):
        changes["grouping_first"] = node.grouping is not None
    return dataclasses.replace(node, **changes)


def normalise_query(text: str) -> str:
    """The canonical text of a valid query; LogQLError (with line and column) otherwise."""
    return format_query(canonical(parse_query(text)))


def same_query(a: ast.Expr, b: ast.Expr) -> bool:
    """Whether two parsed queries are equal after normalisation."""
    return bool(canonical(a) == canonical(b))
