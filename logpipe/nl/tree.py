"""Walking and rewriting LogQL syntax trees, for the NL code that reads and edits queries.

Why generic: the NL side asks the same few questions of any query (which stream matchers,
which label values, which line filters) and makes the same few edits (put another value in a
matcher); walking the frozen dataclasses generically keeps that independent of every node
type the grammar grows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast

T = TypeVar("T")

__all__ = ["line_filters", "map_matchers", "map_nodes", "selector_matchers", "walk"]


def walk(node: Any) -> Iterator[Any]:
    """Every node under ``node`` (itself included), depth first, in field order."""
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
        return
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return
    yield node
    for f in dataclasses.fields(node):
        yield from walk(getattr(node, f.name))


def selector_matchers(expr: ast.Expr) -> list[LabelMatcher]:
    """The stream-selector matchers of every log expression in ``expr``, in order."""
    return [m for node in walk(expr) if isinstance(node, ast.LogExpr) for m in node.matchers]


def line_filters(expr: ast.Expr) -> list[ast.LineFilter]:
    """Every line filter (``|=``, ``|~``, ...) in ``expr``, in order."""
    return [node for node in walk(expr) if isinstance(node, ast.LineFilter)]


def map_matchers(expr: Any, fn: Callable[[LabelMatcher], LabelMatcher | None]) -> Any:
    """``expr`` with each selector matcher replaced by ``fn(matcher)`` (None drops it).

    A selector left without matchers keeps its original ones (an empty selector is not a
    query).
    """
    if isinstance(expr, tuple):
        return tuple(map_matchers(item, fn) for item in expr)
    if not dataclasses.is_dataclass(expr) or isinstance(expr, type):
        return expr
    if isinstance(expr, LabelMatcher):
        return expr
    changes = {f.name: map_matchers(getattr(expr, f.name), fn) for f in dataclasses.fields(expr)}
    if isinstance(expr, ast.LogExpr):
        mapped = tuple(m for m in (fn(m) for m in expr.matchers) if m is not None)
        changes["matchers"] = mapped or expr.matchers
    return dataclasses.replace(expr, **changes)


def map_nodes(expr: Any, kind: type[T], fn: Callable[[T], T]) -> Any:
    """``expr`` with every node of type ``kind`` replaced by ``fn(node)``, inner ones first."""
    if isinstance(expr, tuple):
        return tuple(map_nodes(item, kind, fn) for item in expr)
    if not dataclasses.is_dataclass(expr) or isinstance(expr, type):
        return expr
    changes = {f.name: map_nodes(getattr(expr, f.name), kind, fn) for f in dataclasses.fields(expr)}
    rebuilt = dataclasses.replace(expr, **changes)
    return fn(rebuilt) if isinstance(rebuilt, kind) else rebuilt


def equality(name: str, value: str) -> LabelMatcher:
    """``name="value"``."""
    return LabelMatcher(name, MatchOp.EQ, value)
