"""A token bucket: the model-call budget of the hybrid parser.

Why: a model call takes seconds on a CPU. A burst of new templates (a deploy, a new
service) must not stall ingestion behind a queue of calls, so calls are rationed: the
bucket refills ``rate`` calls per second up to ``burst``; a group that finds it empty keeps
its statistical template for now and is asked about again on a later batch, when the
bucket has refilled. A batch job (``logpipe parse`` on files, where nothing waits behind
it) may instead wait for the next token (:meth:`TokenBucket.wait_secs`): the budget then
only paces the calls. The clock is injectable so tests need no sleeping.

Time spent *inside* a call does not refill the bucket (:meth:`TokenBucket.charge`): else a
model slower than ``1 / rate`` seconds a call would refill the bucket as fast as it is
drained and never be rationed. So ``rate`` is calls per second of the parser's own time,
and a burst of new events costs at most ``burst`` calls plus ``rate`` per second of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` held; ``rate`` <= 0 means unlimited."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        #: Calls refused so far (for the counters).
        self.refused = 0

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> bool:
        """Whether a call could be made now (takes nothing)."""
        if self.unlimited:
            return True
        self._refill()
        return self._tokens >= 1.0

    def charge(self, seconds: float) -> None:
        """Do not refill for ``seconds`` just spent inside a model call."""
        if self.unlimited or seconds <= 0:
            return
        self._at = min(self._clock(), self._at + seconds)

    def wait_secs(self) -> float:
        """Seconds until a call could be made (0 when one can now)."""
        if self.unlimited:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)

    def take(self) -> bool:
        """Take one call if the budget allows; False (counted) when it does not."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False
