"""A tiny explaining detector for the tests of the operational side of detection.

It knows which (user, ip) pairs it saw in normal windows and scores a window by the number
of distinct pairs it never saw; each unseen pair is an explanation edge. That is the
relational anomaly GLAD looks for, in ten lines, so the stage, alerts and daemon wiring are
tested against the :class:`~logpipe.detect.windows.ExplainingDetector` contract only.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from logpipe.detect.windows import EdgeExplanation, Event, Window, WindowScore

__all__ = ["PairDetector", "auth_line"]

_PAIR = re.compile(r"user=(\S+) ip=(\S+)")


def auth_line(ts_s: int, user: str, ip: str) -> bytes:
    return f"2023-11-14T22:00:00Z login ok user={user} ip={ip} t={ts_s}".encode()


def _pair(event: Event) -> tuple[str, str] | None:
    at = event.template.find("user=<*> ip=<*>")
    if at >= 0:  # a parsed event: the values of those two variables
        first = event.template[:at].count("<*>")
        if len(event.params) >= first + 2:
            return event.params[first], event.params[first + 1]
    m = _PAIR.search(event.template)
    return (m.group(1), m.group(2)) if m else None


class PairDetector:
    """Scores a window by its distinct (user, ip) pairs unseen in training."""

    name = "pairs"

    def __init__(self, known: set[tuple[str, str]] | None = None, threshold: float = 0.5):
        self.known = set(known or ())
        self.threshold = threshold
        self.calls = 0

    def fit(self, windows: Sequence[Window]) -> None:
        for w in windows:
            self.known.update(p for e in w.events if (p := _pair(e)) is not None)

    def _unseen(self, window: Window) -> Counter[tuple[str, str]]:
        pairs = (p for e in window.events if (p := _pair(e)) is not None)
        return Counter(p for p in pairs if p not in self.known)

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        return np.array([len(self._unseen(w)) for w in windows], dtype=np.float64)

    def explain(self, windows: Sequence[Window], top_k: int = 5) -> list[WindowScore]:
        self.calls += 1
        out = []
        for w in windows:
            unseen = self._unseen(w)
            edges = tuple(
                EdgeExplanation(f"user:{u}", f"ip:{ip}", "co-occurs", 1.0, n)
                for (u, ip), n in sorted(unseen.items())[:top_k]
            )
            score = float(len(unseen))
            out.append(
                WindowScore(
                    w.key,
                    w.start_ns,
                    w.end_ns,
                    score,
                    self.threshold,
                    score > self.threshold,
                    edges,
                )
            )
        return out

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        config = {"detector": "pairs", "threshold": self.threshold, "known": sorted(self.known)}
        (path / "config.json").write_text(json.dumps(config))

    @classmethod
    def load(cls, path: Path) -> PairDetector:
        config = json.loads((path / "config.json").read_text())
        return cls({(u, ip) for u, ip in config["known"]}, float(config["threshold"]))
