"""Event vocabularies and the two classic window features: count vectors and id sequences.

Why a vocabulary fitted on training windows only: the baselines must treat an event id never
seen in training as *unseen* (that is information: an unknown template is suspicious), and
must not learn the test period's event ids in advance. Every id outside the vocabulary maps
to one shared ``UNKNOWN`` slot, whatever its name, so a model's input size is fixed at fit
time and scoring new data never fails on a new template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from logpipe.detect.windows import Window

__all__ = ["PAD", "UNKNOWN", "EventVocabulary"]

PAD = 0
"""Index of the padding id in :meth:`EventVocabulary.sequences` (never a real event)."""
UNKNOWN = 1
"""Index every event id outside the vocabulary maps to."""


@dataclass(frozen=True)
class EventVocabulary:
    """Event ids seen in training, in first-seen order, at indices ``2..`` (0 pad, 1 unknown)."""

    ids: tuple[str, ...]

    @classmethod
    def fit(cls, windows: Iterable[Window]) -> EventVocabulary:
        """The ids of every event of ``windows``, in order of first appearance (deterministic)."""
        seen: dict[str, None] = {}
        for window in windows:
            for event in window.events:
                seen.setdefault(event.event_id, None)
        return cls(tuple(seen))

    @property
    def size(self) -> int:
        """Number of indices, pad and unknown included."""
        return len(self.ids) + 2

    def index(self) -> dict[str, int]:
        return {eid: i + 2 for i, eid in enumerate(self.ids)}

    def encode(self, window: Window, index: dict[str, int] | None = None) -> np.ndarray:
        """The window's events as vocabulary indices (int64), unseen ids as :data:`UNKNOWN`."""
        lookup = index if index is not None else self.index()
        return np.fromiter(
            (lookup.get(e.event_id, UNKNOWN) for e in window.events),
            dtype=np.int64,
            count=len(window.events),
        )

    def counts(self, windows: Sequence[Window]) -> np.ndarray:
        """Event-count matrix: one row per window, column ``j`` counts index ``j + 1``.

        Column 0 counts unseen ids; the pad index has no column. Shape
        ``(len(windows), size - 1)``, float64.
        """
        lookup = self.index()
        out = np.zeros((len(windows), self.size - 1), dtype=np.float64)
        for row, window in enumerate(windows):
            codes = self.encode(window, lookup)
            if len(codes):
                out[row] += np.bincount(codes - 1, minlength=self.size - 1)
        return out
