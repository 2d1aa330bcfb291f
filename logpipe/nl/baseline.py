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

from collections.abc import Callable, Mapping, Sequence

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
    """Nearest training pair by BM25 over masked questions, with labels substituted.

    ``app_label`` is the label that names an application (``application`` in the NL2LogQL
    data; a store may use ``app`` or ``job``): a question naming one of its values is
    answered from pairs of the same family first."""

    def __init__(self, train: Sequence[Pair], *, app_label: str = "application") -> None:
        self.train = list(train)
        self.app_label = app_label
        docs = []
        for pair in self.train:
            values = [m.value for m in selector_matchers(pair.expr) if len(m.value) >= 3]
            docs.append(tokenize(_mask(pair.question, values, pair.family)))
        self.index = BM25(docs)

    def ranked(self, question: str, labels: Mapping[str, Sequence[str]]) -> list[Pair]:
        """Training pairs by similarity to ``question``: those that share a word with it
        and belong to the family it names, then the others that share a word, then the
        rest in order."""
        named = mentioned_values(question, labels)
        app = named.get(self.app_label, "")
        family = app.split("-", 1)[0].lower() if app else ""
        masked = _mask(question, list(named.values()), family or "application")
        scored = [i for i, _ in self.index.top(tokenize(masked), len(self.train))]
        same = [i for i in scored if self.train[i].family == family]
        taken = set(scored)
        order = same + [i for i in scored if i not in set(same)]
        order += [i for i in range(len(self.train)) if i not in taken]
        return [self.train[i] for i in order]

    def nearest(self, question: str, labels: Mapping[str, Sequence[str]]) -> Pair | None:
        ranked = self.ranked(question, labels)
        return ranked[0] if ranked else None

    def predict(self, question: str, labels: Mapping[str, Sequence[str]]) -> str | None:
        """The baseline's query for ``question`` given the store's label values."""
        pair = self.nearest(question, labels)
        return None if pair is None else self.substitute(pair, question, labels)

    def predict_many(
        self,
        question: str,
        labels: Mapping[str, Sequence[str]],
        n: int,
        key: Callable[[Pair], tuple[int, ...]] | None = None,
    ) -> list[str]:
        """The ``n`` best distinct queries (nearest pairs first, or by ``key`` and then
        nearest; labels substituted)."""
        out: list[str] = []
        ranked = self.ranked(question, labels)
        for pair in sorted(ranked, key=key) if key is not None else ranked:
            query = self.substitute(pair, question, labels)
            if query not in out:
                out.append(query)
            if len(out) == n:
                break
        return out

    def substitute(self, pair: Pair, question: str, labels: Mapping[str, Sequence[str]]) -> str:
        """``pair``'s query with its selector values moved to those ``question`` names."""
        named = mentioned_values(question, labels)
        old_app = next((m.value for m in selector_matchers(pair.expr)
                        if m.name == self.app_label and m.op == MatchOp.EQ), "")  # fmt: skip
        new_app = named.get(self.app_label, "")
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
