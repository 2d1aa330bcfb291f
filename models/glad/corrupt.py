"""Anomaly injection: turn a normal training window into one with a few wrong relations.

Why inject at the event level, before the graph is built: the model scores the edges of a
graph that *contains* the anomaly (at test time an anomalous edge is in the window like any
other), so training negatives must be edges inside a graph too, with the messages a GNN
passes along them. Corrupting events and rebuilding the graph gives exactly that, with no
way for the model to tell a negative by its absence from the graph.

Three corruptions, each keeping the window's length and almost all of its content:

- **value swap** (half of them): one known entity value becomes another known value of the
  same type (bob's address in alice's login line): a relational anomaly with a normal
  template sequence and normal counts. Half of the swaps change that one line, half change
  the value everywhere in the window (alice works from bob's address all session long):
  otherwise the model could learn the shape of a one-line swap (a user with one address
  too many) instead of which relations are normal, and miss a consistent intruder.
- **event substitution** (three in ten): one event becomes an event of another training
  window: an unusual template in an unusual place, with its own values.
- **order swap** (two in ten): two neighbouring events trade places.

An edge of the corrupted graph is labelled anomalous only when no training window has an
edge with the same endpoints (by identity) and kind; a swap that happens to produce a
normal relation teaches nothing wrong.

Before corrupting, a window is cut to a random contiguous slice with probability
``crop_probability``: real windows are often partial (a session cut by the end of the file
or of a time window), and a model that only ever saw whole sessions reads a partial one as
strange everywhere. Every edge of a slice is an edge of the whole window, so slices are
normal by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from logpipe.detect.fields import FieldExtractor, normalise
from logpipe.detect.windows import Event, Window

__all__ = ["Corruptor"]

_KINDS = np.array([0.5, 0.3, 0.2])


class Corruptor:
    """Corrupts windows with a seeded generator (deterministic for one seed and input)."""

    def __init__(
        self,
        extractor: FieldExtractor,
        pools: dict[str, tuple[list[str], np.ndarray]],
        donors: Sequence[Event],
        *,
        rate: float,
        max_corruptions: int,
        crop_probability: float,
        rng: np.random.Generator,
    ) -> None:
        self.extractor = extractor
        self.pools = {k: (values, counts / counts.sum()) for k, (values, counts) in pools.items()}
        self.known = {k: set(values) for k, (values, _) in pools.items()}
        self.donors = donors
        self.rate = rate
        self.max_corruptions = max_corruptions
        self.crop_probability = crop_probability
        self.rng = rng

    def corrupt(self, window: Window, max_events: int) -> Window:
        """A copy of ``window`` (first ``max_events`` events, maybe a slice of them) with a
        few corruptions."""
        events = list(window.events[:max_events])
        if not events:
            return window
        if len(events) > 1 and self.rng.random() < self.crop_probability:
            length = int(self.rng.integers(1, len(events) + 1))
            start = int(self.rng.integers(0, len(events) - length + 1))
            events = events[start : start + length]
        wanted = min(self.max_corruptions, max(1, round(self.rate * len(events))))
        for _ in range(wanted):
            kind = int(self.rng.choice(3, p=_KINDS))
            done = (
                self._swap_value(events)
                if kind == 0
                else self._substitute(events)
                if kind == 1
                else self._swap_order(events)
            )
            if not done:  # fall back to the corruption that always applies
                self._substitute(events)
        return replace(window, events=tuple(events), label=1)

    def _swap_value(self, events: list[Event]) -> bool:
        rng = self.rng
        for i in rng.permutation(len(events))[:8].tolist():
            event = events[i]
            types = self.extractor.plan(event.template, event.params).types
            if len(types) != len(event.params):
                continue
            slots = [
                j
                for j, (kind, raw) in enumerate(zip(types, event.params, strict=True))
                if kind in self.pools and normalise(kind, raw) in self.known[kind]
            ]
            if not slots:
                continue
            j = slots[int(rng.integers(len(slots)))]
            kind = types[j]
            values, probs = self.pools[kind]
            current = normalise(kind, event.params[j])
            for _ in range(4):
                new = values[int(rng.choice(len(values), p=probs))]
                if new != current:
                    targets = range(len(events)) if rng.random() < 0.5 else [i]
                    for k in targets:
                        events[k] = self._replaced(events[k], kind, current, new)
                    return True
        return False

    def _replaced(self, event: Event, kind: str, current: str, new: str) -> Event:
        """``event`` with every ``kind`` slot holding ``current`` set to ``new``."""
        types = self.extractor.plan(event.template, event.params).types
        if len(types) != len(event.params):
            return event
        params = [
            new if t == kind and normalise(t, raw) == current else raw
            for t, raw in zip(types, event.params, strict=True)
        ]
        return replace(event, params=tuple(params))

    def _substitute(self, events: list[Event]) -> bool:
        if not self.donors:
            return False
        i = int(self.rng.integers(len(events)))
        donor = self.donors[int(self.rng.integers(len(self.donors)))]
        events[i] = replace(donor, ts_ns=events[i].ts_ns, line_no=events[i].line_no)
        return True

    def _swap_order(self, events: list[Event]) -> bool:
        if len(events) < 2:
            return False
        for i in self.rng.permutation(len(events) - 1)[:8].tolist():
            if events[i].template != events[i + 1].template:
                events[i], events[i + 1] = events[i + 1], events[i]
                return True
        return False
