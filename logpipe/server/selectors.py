"""Stream selectors out of a ``query`` or ``match[]`` parameter.

The metadata routes (``/labels``, ``/label/{name}/values``, ``/series``, ``/index/stats``)
take a selector such as ``{app="api", env=~"prod|dev"}``. Loki insists on a bare selector;
we read any valid LogQL and use the selectors in it, because Grafana sometimes sends the
query the user typed (``sum(rate({app="api"} |= "x" [5m]))``). Line filters and parsers do
not change which streams exist, so ignoring them gives the same answer at stream level.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from logpipe.labels import LabelMatcher
from logpipe.logql import ast, parse_query

__all__ = ["Selector", "selectors"]

Selector = tuple[LabelMatcher, ...]


def _walk(node: Any, found: list[Selector]) -> None:
    if isinstance(node, ast.LogExpr):
        if node.matchers not in found:
            found.append(node.matchers)
        return
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            _walk(getattr(node, f.name), found)
    elif isinstance(node, tuple | list):
        for item in node:
            _walk(item, found)


def selectors(query: str) -> list[Selector]:
    """The distinct stream selectors of a LogQL query, in order (LogQLError if invalid).

    A query without any (``vector(1)``) gives an empty list.
    """
    found: list[Selector] = []
    _walk(parse_query(query), found)
    return found
