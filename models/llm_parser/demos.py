"""Demonstrations for the template prompt: a shipped file, plus what the run has confirmed.

Why retrieved rather than fixed: a 135M model copies the form of the examples it is shown
far better than it follows instructions, so the examples should look like the lines being
asked about. :class:`DemoPool` ranks its pairs by BM25 over the words of the line
(:mod:`logpipe.nl.bm25`: exact technical words matter more than meaning here) and returns
the best few, one per template.

The pool starts from ``demos.jsonl`` (32 line -> template pairs written for this project,
covering the usual variable kinds: addresses, ports, paths, ids, sizes, durations, user and
host names, states) and grows with the templates a run confirms through a model answer, each
with one of its lines. The benchmark adds, for each system it scores, labelled pairs of the
*other* systems only (leave-one-system-out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources

from logpipe.errors import ModelError
from logpipe.nl.bm25 import BM25, tokenize
from logpipe.parsing.llm_backends import Demonstration

__all__ = ["DEMO_FILE", "DemoPool", "load_demonstrations"]

DEMO_FILE = "demos.jsonl"


def load_demonstrations(text: str | None = None) -> list[Demonstration]:
    """The shipped pairs (or those of ``text``, JSON lines with ``line`` and ``template``)."""
    if text is None:
        text = resources.files(__package__ or "logpipe.models.llm_parser").joinpath(DEMO_FILE)\
            .read_text(encoding="utf-8")  # fmt: skip
    out: list[Demonstration] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            out.append(Demonstration(str(item["line"]), str(item["template"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{DEMO_FILE} line {number}: not a demonstration ({exc})") from None
    return out


class DemoPool:
    """Demonstrations ranked by similarity to a line; see the module docstring."""

    def __init__(self, demos: Iterable[Demonstration] = ()) -> None:
        self._demos: list[Demonstration] = []
        self._templates: set[str] = set()
        self._index: BM25 | None = None
        self.extend(demos)

    def __len__(self) -> int:
        return len(self._demos)

    def add(self, demo: Demonstration) -> None:
        """Add ``demo`` unless its template is in the pool already."""
        if demo.template in self._templates:
            return
        self._templates.add(demo.template)
        self._demos.append(demo)
        self._index = None

    def extend(self, demos: Iterable[Demonstration]) -> None:
        for demo in demos:
            self.add(demo)

    def select(self, line: str, k: int) -> list[Demonstration]:
        """The ``k`` pairs most similar to ``line``, most similar last (nearest the question);
        the first pairs of the pool make up the number when too few share a word."""
        if k <= 0 or not self._demos:
            return []
        if self._index is None:
            self._index = BM25([tokenize(d.line) for d in self._demos])
        picked = [i for i, _ in self._index.top(tokenize(line), k)]
        for i in range(len(self._demos)):
            if len(picked) >= k:
                break
            if i not in picked:
                picked.append(i)
        return [self._demos[i] for i in reversed(picked)]
