"""Draining on SIGTERM and SIGINT, for the long-running loops (the daemon, the pipeline runner).

Why one place: both must install their handlers only on the main thread (Python allows no
other), put the previous handlers back when the loop ends, and write the same structured
``draining`` record that operators and the Ctrl-C test look for.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["drain_on_signals"]


@contextmanager
def drain_on_signals(
    stop: Callable[[], None], log: logging.Logger, enabled: bool = True
) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT call ``stop`` (which asks the loop to drain) instead
    of killing the process; a no-op off the main thread or when not ``enabled``."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("draining", extra={"signal": signal.Signals(signum).name})
        stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
