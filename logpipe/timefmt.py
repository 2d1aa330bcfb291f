"""RFC 3339 text of nanosecond Unix times, stdlib only.

Why its own module: the query renderer (whose imports must stay light for the CLI's start-up
time) and the alert payloads (Alertmanager's ``startsAt``/``endsAt``) print times the same
way, and neither should import :mod:`logpipe.timestamps` (pyarrow, numpy) for it.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["rfc3339"]


def rfc3339(ns: int) -> str:
    """``2023-11-14T22:13:20.5Z`` for ``ns`` nanoseconds since the epoch (UTC, ``Z``;
    the fraction only when non-zero, without trailing zeros)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"
