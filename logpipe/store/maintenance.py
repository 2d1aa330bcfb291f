"""The daemon's store upkeep: compaction between flushes, retention on a thread of its own.

Why compaction runs on the pipeline's writer thread (:class:`Compactor`, one merge after
a flush when due) and not on a thread of its own: a merge decodes and re-encodes a few MB
of lines, and its memory peak, added to a concurrent flush's in another malloc arena, made
the daemon's RSS about 50 MiB higher in a measured run. Between flushes the two never
overlap, each merge is bounded (one target-sized segment, under a second here), and the
commit of the flush before it is not delayed (the runner calls it after the acks).

Retention (:class:`Maintenance`) deletes whole segments once a minute and is cheap, so it
keeps a thread; the same thread deletes the files that retention and compaction retired
once their delay has passed. Failures are logged and retried: upkeep falling behind slows
nothing down, and the data is safe either way (see :meth:`logpipe.store.Store.compact`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from logpipe.errors import StoreError
from logpipe.store.store import CompactionReport, Store

__all__ = ["CompactionPolicy", "Compactor", "Maintenance"]

log = logging.getLogger("logpipe.store.maintenance")

_NS = 1_000_000_000


@dataclass(frozen=True)
class CompactionPolicy:
    """How often to look for merges and how big they may get.

    ``max_span_secs`` is capped at a tenth of ``retention_secs``: retention deletes whole
    segments by their newest line, so a merged segment's span is how long its oldest line
    can outlive the retention period. Segments retention is about to delete are left alone.
    """

    every_secs: float = 10.0
    target_bytes: int | None = None
    max_span_secs: float = 3600.0
    retention_secs: float | None = None

    @property
    def max_span_ns(self) -> int:
        span = self.max_span_secs
        if self.retention_secs is not None:
            span = min(span, self.retention_secs / 10)
        return max(1, int(span * _NS))


class Compactor:
    """One merge per :meth:`step` while there is work, then a look every ``every_secs``.

    ``clock`` (monotonic seconds) and ``now_ns`` (wall clock) are there for tests.
    """

    def __init__(
        self,
        store: Store,
        policy: CompactionPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._now_ns = now_ns
        self._next = clock() + policy.every_secs

    def step(self) -> CompactionReport | None:
        """Merge once if due (None when not due). Raises OSError/StoreError on failure;
        the next step retries after ``every_secs``."""
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self.policy.every_secs  # on failure too: no tight retry loop
        p = self.policy
        expired = None
        if p.retention_secs is not None:
            expired = self._now_ns() - int(p.retention_secs * _NS)
        report = self.store.compact(target_bytes=p.target_bytes, max_span_ns=p.max_span_ns,
                                    expired_before_ns=expired, max_jobs=1)  # fmt: skip
        if report.merges:
            self._next = now  # more may be waiting: go on after the next flush
            log.debug("compaction", extra={"segments_in": report.segments_in,
                                           "bytes_in": report.bytes_in,
                                           "bytes_out": report.bytes_out})  # fmt: skip
        for problem in report.problems:
            log.warning("compaction skipped a merge: %s", problem)
        return report


class Maintenance:
    """Retention every ``retention_every_secs`` and late deletes, on a thread of their own
    (:meth:`run`); ``clock`` and ``now_ns`` as for :class:`Compactor`."""

    def __init__(
        self,
        store: Store,
        retention_secs: float | None,
        *,
        every_secs: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.retention_secs = retention_secs
        self.every_secs = every_secs
        self._clock = clock
        self._now_ns = now_ns
        self._next = clock() + every_secs

    def run_once(self) -> None:
        """Retention if due, then the retired files whose delay has passed."""
        now = self._clock()
        if self.retention_secs is not None and now >= self._next:
            self._next = now + self.every_secs
            self._guard("retention", self._retention)
        self._guard("deleting retired segment files", self.store.collect_garbage)

    def run(self, stop: threading.Event, tick_secs: float = 10.0) -> None:
        """:meth:`run_once` every ``tick_secs`` until ``stop`` is set (a thread's target)."""
        while not stop.wait(tick_secs):
            self.run_once()

    def _retention(self) -> None:
        assert self.retention_secs is not None
        report = self.store.apply_retention(
            max_age_ns=int(self.retention_secs * _NS), now_ns=self._now_ns()
        )
        if report.removed:
            log.info("retention", extra={"segments": len(report.removed),
                                         "bytes_freed": report.bytes_freed})  # fmt: skip

    @staticmethod
    def _guard(what: str, job: Callable[[], object]) -> None:
        try:
            job()
        except (OSError, StoreError):
            log.exception("%s failed; will retry", what)
