"""The retrieval-only baseline: the nearest training question's query, labels substituted.

What a model has to beat. For a new question: find the label values it names (the store's
values, longest first: ``openssh-us-east``), mask them, and find the training question
nearest to it by BM25 (among pairs of the same application family when the question names
an application). Its gold query is the answer, with the selector's values moved to the new
question's: a label the new question names takes the named value; a value derived from the
old application (``LabSZ-us-east`` beside ``openssh-us-east``) gets the same change as the
application (``LabSZ-eu-west`` beside ``openssh-eu-west``) when the store has that value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql import format_query
from logpipe.nl.bm25 import BM25, tokenize
from logpipe.nl.data import Pair
from logpipe.nl.tree import map_matchers, selector_matchers

__all__ = ["RetrievalBaseline", "mentioned_values"]


def mentioned_values(question: str, labels: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """label -> the value the question names (the longest match wins, one per label; a
    shorter value inside a longer one already taken does not count)."""
    lowered = question.lower()
    spans: list[tuple[int, int]] = []
    found: dict[str, str] = {}
    ranked = sorted(((v, n) for n, vs in labels.items() for v in vs if len(v) >= 3),
                    key=lambda x: (-len(x[0]), x[0], x[1]))  # fmt: skip
    for value, name in ranked:
        if name in found:
            continue
        at = lowered.find(value.lower())
        while at >= 0:
            end = at + len(value)
            inside_word = (at > 0 and (lowered[at - 1].isalnum() or lowered[at - 1] == "-")) or (
                end < len(lowered) and (lowered[end].isalnum() or lowered[end] == "-"))  # fmt: skip
            if not inside_word and not any(a < end and at < b for a, b in spans):
                spans.append((at, end))
                found[name] = value
                break
            at = lowered.find(value.lower(), at + 1)
    return found


def _mask(question: str, values: Sequence[str], family: str) -> str:
    text = question.lower()
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value.lower(), f" {family} ")
    return text


def _changed_part(old: str, new: str) -> tuple[str, str]:
    """The differing middles of two strings (common prefix and suffix removed)."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return old[p : len(old) - s], new[p : len(new) - s]


class RetrievalBaseline:
    """Nearest training pair by BM25 over masked questions, with labels substituted."""

    def __init__(self, train: Sequence[Pair]) -> None:
        self.train = list(train)
        docs = []
        for pair in self.train:
            values = [m.value for m in selector_matchers(pair.expr) if len(m.value) >= 3]
            docs.append(tokenize(_mask(pair.question, values, pair.family)))
        self.index = BM25(docs)

    def nearest(self, question: str, labels: Mapping[str, Sequence[str]]) -> Pair | None:
        named = mentioned_values(question, labels)
        app = named.get("application", "")
        family = app.split("-", 1)[0].lower() if app else ""
        masked = _mask(question, list(named.values()), family or "application")
        ranked = self.index.top(tokenize(masked), len(self.train))
        same = [i for i, _ in ranked if self.train[i].family == family]
        pick = same or [i for i, _ in ranked]
        return self.train[pick[0]] if pick else (self.train[0] if self.train else None)

    def predict(self, question: str, labels: Mapping[str, Sequence[str]]) -> str | None:
        """The baseline's query for ``question`` given the store's label values."""
        pair = self.nearest(question, labels)
        if pair is None:
            return None
        named = mentioned_values(question, labels)
        old_app = next((m.value for m in selector_matchers(pair.expr)
                        if m.name == "application" and m.op == MatchOp.EQ), "")  # fmt: skip
        new_app = named.get("application", "")
        old_part, new_part = _changed_part(old_app, new_app) if old_app and new_app else ("", "")

        def substitute(m: LabelMatcher) -> LabelMatcher:
            if m.op != MatchOp.EQ:
                return m
            if m.name in named:
                return LabelMatcher(m.name, m.op, named[m.name])
            if old_part and old_part in m.value:
                moved = m.value.replace(old_part, new_part)
                if moved in labels.get(m.name, ()):
                    return LabelMatcher(m.name, m.op, moved)
            return m

        return format_query(map_matchers(pair.expr, substitute))
