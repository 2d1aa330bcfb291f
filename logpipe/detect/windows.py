"""The unit every detector scores: a window of parsed events, and the detector contract.

Why one shared shape: GLAD and every baseline (PCA, IsolationForest, DeepLog) must see
exactly the same windows and splits for the benchmark to be honest, so windows are built
once (by session key such as an HDFS block id, or by time) and handed to each detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "Detector",
    "EdgeExplanation",
    "Event",
    "ExplainingDetector",
    "Window",
    "WindowScore",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One parsed log line as a detector sees it.

    ``event_id`` is the parser's event id (stable for one miner state); ``template`` its text
    with ``<*>`` slots; ``params`` the values of those slots in order; ``line_no`` is the
    1-based line in its source, so an alert can point back at the log.
    """

    ts_ns: int
    event_id: str
    template: str
    params: tuple[str, ...]
    line_no: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    """Events grouped by a session key or a time window, in arrival order.

    ``dropped`` counts events beyond the per-window bound (kept out to bound memory, never
    silently: they are reported). ``label`` is 1 for anomalous, 0 for normal, None unknown.
    """

    key: str
    start_ns: int
    end_ns: int
    events: tuple[Event, ...]
    dropped: int = 0
    label: int | None = None


class Detector(Protocol):
    """What the benchmark and the CLI need from a detector: fit on normal windows, then
    give every window a score where higher means more anomalous."""

    name: str

    def fit(self, windows: Sequence[Window]) -> None: ...

    def score(self, windows: Sequence[Window]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class EdgeExplanation:
    """One edge of a window's graph that made it anomalous: an alert names a few of these.

    ``source``/``target`` are node names such as ``template:Receiving block <*>`` or
    ``user:alice``; ``kind`` is ``co-occurs`` (same line) or ``follows`` (succession);
    ``score`` is how anomalous the edge is (higher = more); ``count`` its weight in the window.
    """

    source: str
    target: str
    kind: str
    score: float
    count: int


@dataclass(frozen=True, slots=True)
class WindowScore:
    """A scored window: the score, the threshold it was compared with, and why."""

    key: str
    start_ns: int
    end_ns: int
    score: float
    threshold: float
    anomalous: bool
    edges: tuple[EdgeExplanation, ...] = ()


class ExplainingDetector(Detector, Protocol):
    """A detector with a fitted threshold that can say which edges drove a score (GLAD)."""

    threshold: float

    def explain(self, windows: Sequence[Window], top_k: int = 5) -> list[WindowScore]: ...
