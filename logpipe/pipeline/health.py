"""Liveness and readiness, as Kubernetes probes (and Loki's ``/ready``) mean them.

*Live*: the pipeline's threads are running and the writer is not stuck; a failing live
probe means "restart me". *Ready*: every source is connected and the last write to the
sinks succeeded; not ready means "do not count on me now" (a full disk, a broker away)
and recovers by itself. Why a separate object: the HTTP server reads it from another
thread without touching the runner's internals.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["Health", "HealthSnapshot"]


@dataclass(frozen=True)
class HealthSnapshot:
    live: bool
    ready: bool
    reasons: tuple[str, ...]


class Health:
    """Thread-safe health state; parts set conditions, probes read :meth:`snapshot`."""

    def __init__(self, stall_after_s: float = 300.0) -> None:
        self._lock = threading.Lock()
        self._not_ready: dict[str, str] = {"starting": "the pipeline has not started"}
        self._live = False
        self._beat = time.monotonic()
        self.stall_after_s = stall_after_s

    def set_live(self, live: bool) -> None:
        with self._lock:
            self._live = live
            self._beat = time.monotonic()

    def beat(self) -> None:
        """The writer loop calls this on every turn; a silent writer is a stuck one."""
        self._beat = time.monotonic()

    def problem(self, key: str, why: str | None) -> None:
        """Set (``why``) or clear (None) one reason the pipeline is not ready."""
        with self._lock:
            if why is None:
                self._not_ready.pop(key, None)
            else:
                self._not_ready[key] = why

    def snapshot(self) -> HealthSnapshot:
        with self._lock:
            stalled = time.monotonic() - self._beat > self.stall_after_s
            live = self._live and not stalled
            reasons = tuple(f"{k}: {v}" for k, v in sorted(self._not_ready.items()))
            if stalled:
                reasons += (f"writer: no progress for {self.stall_after_s:.0f} s",)
            return HealthSnapshot(live=live, ready=live and not self._not_ready, reasons=reasons)
