"""What the push route hands pushes to when a daemon's pipeline stores them.

Why an interface here and the implementation in ``logpipe.connectors.push``: the API must
not know the pipeline's threads, and ``logpipe server`` (no pipeline) keeps writing pushes
straight into the store. In a daemon, a push becomes one more source of the pipeline, so it
gets the same stages (templates), metrics and sinks as a Kafka record or a tailed line.

The contract: :meth:`PushTarget.submit` queues a push or refuses it at once
(:class:`PushBusyError`: the queue is full, answer 429, or 503 when the store itself is failing;
:class:`PushUnavailableError`: the pipeline is not running, 503), both with a ``Retry-After``.
``done`` is called exactly once, from another thread, with None when every line of the
push is durably written (then the client gets 204) or with the reason it was not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pyarrow as pa

__all__ = ["PushBusyError", "PushDone", "PushTarget", "PushUnavailableError"]

#: Called once per push: None when stored, else why not (the client gets 503).
PushDone = Callable[[str | None], None]


class PushBusyError(Exception):
    """The push queue is full: retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PushUnavailableError(Exception):
    """The pipeline does not take pushes now (starting or stopping)."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PushTarget(Protocol):
    """A pipeline source that takes pushes (see the module docstring)."""

    def submit(self, tenant: str, table: pa.Table, done: PushDone) -> object:
        """Queue ``table`` (``ts`` int64 ns, ``labels`` text, ``line`` binary) for
        ``tenant``; a ticket for :meth:`cancel`. Raises PushBusyError or PushUnavailableError."""

    def cancel(self, ticket: object) -> bool:
        """Withdraw a push not yet taken into the pipeline (True: it will never be
        stored, and ``done`` is not called); False when it is already under way."""
