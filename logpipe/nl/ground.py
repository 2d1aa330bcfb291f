"""Grounding line filters in the store's real log text.

Why: a small model paraphrases. Asked "how many times did the NameSystem allocate new
blocks", it writes ``|= "allocate new blocks"``, a phrase no log line contains, and the query
is valid, runs, and answers zero. The store knows what its lines say (the templates the
prompt showed), so a line filter that matches nothing in the streams the query selects is
replaced by the constant text of the template nearest to it and to the question, provided
that text does match a line there. Every replacement is named, like the other repairs
(:mod:`logpipe.nl.repair`), and the result is parsed and validated again by the caller.

Only positive filters (``|=``, ``|~``) are grounded: a negative filter that matches nothing
removes nothing, which is a fine answer. A filter whose values match something is left
alone, whatever the templates say.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from logpipe.errors import LogQLError
from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import ast, format_query
from logpipe.logql.results import Streams
from logpipe.nl.answer import QueryRunner
from logpipe.nl.bm25 import BM25, tokenize

__all__ = [
    "Probe",
    "TemplateGrounder",
    "constant_segments",
    "format_filter",
    "stems",
    "store_probe",
]

# Whether a line filter keeps any line of the streams the matchers select.
Probe = Callable[[tuple[LabelMatcher, ...], ast.LineFilter], bool]

_POSITIVE = ("|=", "|~")
_MIN_SEGMENT = 4  # characters: shorter constant text ("to", "of") says nothing
_WILDCARD = re.compile(r"<\*>|<[A-Z_]+>")


def constant_segments(template: str) -> list[str]:
    """The constant runs of a template between its wildcards, longest first, trimmed of
    punctuation at the ends that a variable's neighbourhood leaves (``blk_``, ``=``)."""
    parts = [p.strip(" \t:=,;[]()'\"") for p in _WILDCARD.split(template)]
    return sorted({p for p in parts if len(p) >= _MIN_SEGMENT}, key=lambda p: (-len(p), p))


def stems(text: str) -> list[str]:
    """BM25 words cut to five letters: a paraphrase and a log line share stems more often
    than words ("receive"/"Receiving", "allocation"/"allocateBlock")."""
    return [w[:5] for w in tokenize(text)]


def _text_of(line_filter: ast.LineFilter) -> str:
    return " ".join(v for v in line_filter.values if isinstance(v, str))


class TemplateGrounder:
    """Rewrites queries whose positive line filters match no line of their streams.

    ``templates`` are the store's (those the prompt draws from); ``probe`` asks the store
    whether a filter keeps any line; at most ``tries`` templates are probed per filter."""

    def __init__(self, templates: Sequence[str], probe: Probe, *, tries: int = 4) -> None:
        self.templates = [t for t in templates if constant_segments(t)]
        self.index = BM25([stems(t.replace("<*>", " ")) for t in self.templates])
        self.probe = probe
        self.tries = tries

    def _replacement(
        self, matchers: tuple[LabelMatcher, ...], line_filter: ast.LineFilter, question: str
    ) -> ast.LineFilter | None:
        words = stems(_text_of(line_filter))
        ranked = self.index.top(words + stems(question), self.tries)
        for i, _ in ranked:
            segments = constant_segments(self.templates[i])
            wanted = set(words)
            best = max(segments, key=lambda s: (len(wanted & set(stems(s))), len(s)))
            candidate = ast.LineFilter("|=", (best,))
            if self.probe(matchers, candidate):
                return candidate
        return None

    def ground(self, expr: ast.Expr, question: str) -> tuple[ast.Expr, list[str]]:
        """``expr`` with each dead positive filter replaced, and the repairs' names."""
        done: list[str] = []

        def visit(node: Any) -> Any:
            if isinstance(node, tuple):
                return tuple(visit(item) for item in node)
            if not dataclasses.is_dataclass(node) or isinstance(node, type):
                return node
            if isinstance(node, ast.LogExpr):
                stages: list[Any] = []
                for stage in node.stages:
                    kept = stage
                    if (isinstance(stage, ast.LineFilter) and stage.op in _POSITIVE
                            and not self.probe(node.matchers, stage)):  # fmt: skip
                        new = self._replacement(node.matchers, stage, question)
                        if new is not None:
                            done.append(f"line filter {format_filter(stage)} matched no line; "
                                        f"grounded as {format_filter(new)}")  # fmt: skip
                            kept = new
                    stages.append(kept)
                return dataclasses.replace(node, stages=tuple(stages))
            changes = {f.name: visit(getattr(node, f.name)) for f in dataclasses.fields(node)}
            return dataclasses.replace(node, **changes)

        grounded = visit(expr)
        return (grounded if done else expr), done


def format_filter(line_filter: ast.LineFilter) -> str:
    """``|= "text"`` as LogQL prints it."""
    text = format_query(ast.LogExpr((LabelMatcher("a", MatchOp.EQ, "b"),), (line_filter,)))
    return text[text.index("}") + 1 :].strip()


def store_probe(runner: QueryRunner, *, start_ns: int, end_ns: int, tenant: str) -> Probe:
    """A :data:`Probe` over an engine (anything with ``query_range``): one log query with
    limit 1 per (selector, filter), remembered, so grounding N candidates that share a
    selector asks the store once per distinct filter."""
    seen: dict[str, bool] = {}

    def probe(matchers: tuple[LabelMatcher, ...], line_filter: ast.LineFilter) -> bool:
        query = format_query(ast.LogExpr(matchers, (line_filter,)))
        if query not in seen:
            try:
                result = runner.query_range(query, start_ns=start_ns, end_ns=end_ns,
                                            tenant=tenant, limit=1)  # fmt: skip
                seen[query] = isinstance(result, Streams) and any(s.entries for s in result.streams)
            except LogQLError:
                seen[query] = True  # cannot tell: leave the filter as written
        return seen[query]

    return probe
