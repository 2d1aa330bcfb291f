"""Okapi BM25 over short texts: which examples, templates and label values a question is about.

Why BM25 and our own: the texts are tiny (a question, a template, a label value), the
vocabulary is technical (``allocateBlock``, ``nova-compute``, ``preauth``) where exact words
matter more than meaning, and ranking a few thousand of them takes microseconds with no
model to load. Ties are broken by position, so a ranking is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["BM25", "tokenize"]

_TOKEN = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "had",
    "has", "have", "how", "i", "in", "is", "it", "me", "of", "on", "or", "show", "the",
    "their", "there", "these", "this", "to", "was", "were", "what", "when", "where", "which",
    "who", "with",
})  # fmt: skip


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; camelCase split too (``allocateBlock`` -> ``allocate``,
    ``block``, ``allocateblock``); stop words dropped."""
    out: list[str] = []
    for word in _TOKEN.findall(text):
        lowered = word.lower()
        if lowered in STOPWORDS:
            continue
        out.append(lowered)
        parts = _CAMEL.split(word)
        if len(parts) > 1:
            out.extend(p.lower() for p in parts if p.lower() not in STOPWORDS)
    return out


class BM25:
    """An index of documents (token lists) ranked against a query with BM25."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tf = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg = (sum(self.lengths) / len(docs)) if docs else 0.0
        df: Counter[str] = Counter()
        for counts in self.tf:
            df.update(counts.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def __len__(self) -> int:
        return len(self.tf)

    def scores(self, query: Sequence[str]) -> list[float]:
        """The score of every document, in index order."""
        terms = [t for t in dict.fromkeys(query) if t in self.idf]
        out = []
        for counts, length in zip(self.tf, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg) if self.avg else self.k1
            score = 0.0
            for t in terms:
                f = counts.get(t, 0)
                if f:
                    score += self.idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(score)
        return out

    def top(
        self, query: Sequence[str], k: int, *, min_score: float = 0.0
    ) -> list[tuple[int, float]]:
        """The ``k`` best (index, score) with a score above ``min_score``; ties by index."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda x: (-x[1], x[0]))
        return [(i, s) for i, s in ranked[:k] if s > min_score]
