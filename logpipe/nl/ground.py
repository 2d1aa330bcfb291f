"""Grounding line filters in the store's real log text.

Why: a small model paraphrases. Asked "how many times did the NameSystem allocate new
blocks", it writes ``|= "allocate new blocks"``, a phrase no log line contains, and the query
is valid, runs, and answers zero. The store knows what its lines say (the templates the
prompt showed), so a line filter that matches nothing in the streams the query selects is
replaced by the constant text of the template nearest to it and to the question, provided
that text does match a line there. Every replacement is named, like the other repairs
(:mod:`logpipe.nl.repair`), and the result is parsed and validated again by the caller.

A filter that matches lines can still be about something else: asked for "possible break-in
attempts", the model writes ``|= "Failed password for invalid user"`` because its training
examples did. Two more rules catch that, both measured on the training pairs first:

* **quoted text**: a phrase of two or more words the question quotes (``'Corrupted MAC on
  input'``) is the user's own words for the lines they want; positive filters that say less
  than half of it are replaced by it, even when no line says it (then the true answer is
  empty, not some other lines);
* **off-topic**: when no positive filter of a log expression shares a word stem with the
  question (true of 4 of the 237 gold log expressions in training), they are replaced by the
  run of words of a store template that says at least two of the question's words, if such a
  run matches lines there.

Only positive filters (``|=``, ``|~``) are grounded: a negative filter that matches nothing
removes nothing, which is a fine answer.
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
from logpipe.nl.repair import without_time_span

__all__ = [
    "Probe",
    "TemplateGrounder",
    "constant_segments",
    "format_filter",
    "quoted_phrases",
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
            if len(wanted & set(stems(best))) * 2 <= len(wanted):
                continue  # says too little of the filter: other text, not its paraphrase
            candidate = ast.LineFilter("|=", (best,))
            if self.probe(matchers, candidate):
                return candidate
        return None

    def _question_span(
        self, matchers: tuple[LabelMatcher, ...], wanted: set[str]
    ) -> ast.LineFilter | None:
        """The longest-supported run of template words saying >= 2 of ``wanted`` stems that
        matches a line of the streams, or None."""
        spans: list[tuple[int, str]] = []
        for i, _ in self.index.top(sorted(wanted), self.tries):
            for segment in constant_segments(self.templates[i]):
                span = _covering_span(segment, wanted)
                if span is not None:
                    spans.append(span)
        for _, text in sorted(spans, key=lambda s: (-s[0], -len(s[1]), s[1])):
            candidate = ast.LineFilter("|=", (text,))
            if self.probe(matchers, candidate):
                return candidate
        return None

    def _quoted(self, node: ast.LogExpr, question: str, done: list[str]) -> ast.LogExpr:
        """``node`` with the question's quoted phrase for positive filters that say less
        than half of it (module docstring)."""
        filters = _positive(node)
        texts = [_text_of(f) for f in filters.values()]
        for phrase in quoted_phrases(question) if filters else []:
            said = set(stems(phrase))
            if said and all(len(said & set(stems(t))) * 2 < len(said) for t in texts):
                why = f"the question quotes '{phrase}'"
                return _replaced(node, filters, ast.LineFilter("|=", (phrase,)), why, done)
        return node

    def _off_topic(self, node: ast.LogExpr, question: str, done: list[str]) -> ast.LogExpr:
        """``node`` with its positive filters put on the question's words when none of them
        shares a word stem with the question (module docstring)."""
        filters = _positive(node)
        words = [set(stems(_text_of(f))) for f in filters.values()]
        if not words or not all(words):  # ip("..."), a bare regexp: nothing to compare
            return node
        asked = set(stems(without_time_span(question)))
        if any(w & asked for w in words):
            return node
        new = self._question_span(node.matchers, asked)
        if new is None:
            return node
        return _replaced(node, filters, new, "shares no word with the question", done)

    def ground(self, expr: ast.Expr, question: str) -> tuple[ast.Expr, list[str]]:
        """``expr`` with positive filters replaced where the quoted-text, dead-filter and
        off-topic rules apply (module docstring), and the repairs' names."""
        done: list[str] = []

        def visit(node: Any) -> Any:
            if isinstance(node, tuple):
                return tuple(visit(item) for item in node)
            if not dataclasses.is_dataclass(node) or isinstance(node, type):
                return node
            if isinstance(node, ast.LogExpr):
                node = self._quoted(node, question, done)
                stages: list[Any] = []
                for stage in node.stages:
                    kept = stage
                    if (isinstance(stage, ast.LineFilter) and stage.op in _POSITIVE
                            and not _users_own(stage, question)
                            and not self.probe(node.matchers, stage)):  # fmt: skip
                        new = self._replacement(node.matchers, stage, question)
                        if new is not None:
                            done.append(f"line filter {format_filter(stage)} matched no line; "
                                        f"grounded as {format_filter(new)}")  # fmt: skip
                            kept = new
                    stages.append(kept)
                node = dataclasses.replace(node, stages=tuple(stages))
                return self._off_topic(node, question, done)
            changes = {f.name: visit(getattr(node, f.name)) for f in dataclasses.fields(node)}
            return dataclasses.replace(node, **changes)

        grounded = visit(expr)
        return (grounded if done else expr), done


def _positive(node: ast.LogExpr) -> dict[int, ast.LineFilter]:
    """``node``'s positive line filters by stage position."""
    return {i: st for i, st in enumerate(node.stages)
            if isinstance(st, ast.LineFilter) and st.op in _POSITIVE}  # fmt: skip


def _replaced(
    node: ast.LogExpr,
    filters: dict[int, ast.LineFilter],
    new: ast.LineFilter,
    why: str,
    done: list[str],
) -> ast.LogExpr:
    """``node`` with ``new`` where the first of ``filters`` was and the others dropped;
    the repair is named in ``done``."""
    old = " ".join(format_filter(f) for f in filters.values())
    done.append(f"line filter {old} {why}; grounded as {format_filter(new)}")
    first = min(filters)
    stages = [new if i == first else st for i, st in enumerate(node.stages)
              if i == first or i not in filters]  # fmt: skip
    return dataclasses.replace(node, stages=tuple(stages))


_VALUE = re.compile(r"\S*\d\S*")


def _users_own(line_filter: ast.LineFilter, question: str) -> bool:
    """Whether a filter carries the user's own words: text the question quotes, or a value
    it names (``500``, an IP, an instance id: any word with a digit). Such a filter
    that matches nothing says the true answer is empty; it is not a paraphrase to ground."""
    text = _text_of(line_filter).lower()
    if any(q.lower() in text for q in _quoted_texts(question)):
        return True
    values = {v.strip(_EDGE_PUNCT).lower() for v in _VALUE.findall(question)}
    return any(v and v in text for v in values)


_QUOTED = re.compile(r"(?<![\w'])'([^']+)'(?![\w'])|\"([^\"]+)\"")
_EDGE_PUNCT = " \t:=,;.!?-'\"()[]"


def _quoted_texts(question: str) -> list[str]:
    """Everything the question puts in quotes, in order, trimmed; empty quotes left out."""
    found = (m.group(1) or m.group(2) for m in _QUOTED.finditer(question))
    return [t for t in (f.strip() for f in found) if t]


def quoted_phrases(question: str) -> list[str]:
    """Phrases of two or more words the question puts in quotes, in order; a quoted single
    word is a value (a user, a host), not text the user wants lines to say."""
    return [t for t in _quoted_texts(question) if len(t.split()) >= 2]


def _covering_span(segment: str, wanted: set[str]) -> tuple[int, str] | None:
    """The run of ``segment``'s words from the first to the last that says one of
    ``wanted``'s stems, with how many do; None for fewer than two. The run keeps the log's
    own spelling and drops the punctuation at its ends."""
    words = segment.split()
    hits = [i for i, w in enumerate(words) if set(stems(w)) & wanted]
    if len(hits) < 2:
        return None
    text = " ".join(words[hits[0] : hits[-1] + 1]).strip(_EDGE_PUNCT)
    return (len(hits), text) if text else None


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
