"""The daemon's store upkeep: retention and compaction, on one background thread.

Why one thread for both: they are the only writers besides the pipeline, each takes the
store's lock only to swap the manifest, and running them one after the other means
compaction never spends work on segments retention is about to delete (it is told the
expiry cutoff and leaves those alone). The pipeline's flushes are never blocked by a merge
being encoded: only by the short manifest swap.

Failures are logged and retried at the next tick: upkeep falling behind slows nothing
down, and the data is safe either way (see :meth:`logpipe.store.Store.compact`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from logpipe.errors import StoreError
from logpipe.store.store import Store

__all__ = ["Maintenance", "MaintenancePolicy"]

log = logging.getLogger("logpipe.store.maintenance")

_NS = 1_000_000_000


@dataclass(frozen=True)
class MaintenancePolicy:
    """What to do and how often (``None`` turns a job off).

    ``compact_max_span_secs`` is capped at a tenth of ``retention_secs``: retention
    deletes whole segments by their newest line, so a merged segment's span is how long
    its oldest line can outlive the retention period.
    """

    retention_secs: float | None = None
    retention_every_secs: float = 60.0
    compact_every_secs: float | None = 10.0
    compact_target_bytes: int | None = None
    compact_max_span_secs: float = 3600.0

    @property
    def max_span_ns(self) -> int:
        span = self.compact_max_span_secs
        if self.retention_secs is not None:
            span = min(span, self.retention_secs / 10)
        return max(1, int(span * _NS))

    @property
    def tick_secs(self) -> float | None:
        """How often :meth:`Maintenance.run` wakes (None: nothing to do)."""
        every = [self.compact_every_secs]
        if self.retention_secs is not None:
            every.append(self.retention_every_secs)
        due = [e for e in every if e is not None]
        return min(due) if due else None


class Maintenance:
    """Runs ``policy`` on ``store``; ``clock`` (monotonic s) and ``now_ns`` (wall clock)
    are there for tests."""

    def __init__(
        self,
        store: Store,
        policy: MaintenancePolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._now_ns = now_ns
        start = clock()
        self._next_retention = start + policy.retention_every_secs
        self._next_compaction = start + (policy.compact_every_secs or 0.0)

    def run_once(self) -> None:
        """Whatever is due: retention first, then compaction, then late deletes."""
        p = self.policy
        now = self._clock()
        if p.retention_secs is not None and now >= self._next_retention:
            self._next_retention = now + p.retention_every_secs
            self._guard("retention", self._retention)
        if p.compact_every_secs is not None and now >= self._next_compaction:
            self._next_compaction = now + p.compact_every_secs
            self._guard("compaction", self._compaction)
        self._guard("deleting retired segments", self.store.collect_garbage)

    def run(self, stop: threading.Event) -> None:
        """:meth:`run_once` every tick until ``stop`` is set (a daemon thread's target)."""
        tick = self.policy.tick_secs
        if tick is None:
            return
        while not stop.wait(tick):
            self.run_once()

    def _retention(self) -> None:
        assert self.policy.retention_secs is not None
        report = self.store.apply_retention(
            max_age_ns=int(self.policy.retention_secs * _NS), now_ns=self._now_ns()
        )
        if report.removed:
            log.info("retention", extra={"segments": len(report.removed),
                                         "bytes_freed": report.bytes_freed})  # fmt: skip

    def _compaction(self) -> None:
        p = self.policy
        expired = None
        if p.retention_secs is not None:
            expired = self._now_ns() - int(p.retention_secs * _NS)
        report = self.store.compact(target_bytes=p.compact_target_bytes,
                                    max_span_ns=p.max_span_ns,
                                    expired_before_ns=expired)  # fmt: skip
        if report.merges:
            log.info("compaction", extra={"merged": report.merges,
                                          "segments_in": report.segments_in,
                                          "bytes_in": report.bytes_in,
                                          "bytes_out": report.bytes_out})  # fmt: skip
        for problem in report.problems:
            log.warning("compaction skipped a merge: %s", problem)

    @staticmethod
    def _guard(what: str, job: Callable[[], object]) -> None:
        try:
            job()
        except (OSError, StoreError):
            log.exception("%s failed; will retry", what)
