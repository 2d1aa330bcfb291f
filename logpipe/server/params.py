"""Loki's query parameters, parsed as Loki parses them (``pkg/loghttp/params.go``).

Why a module of its own: the server and ``logpipe query --store`` must read ``start``,
``end``, ``since``, ``step`` and friends the same way, and the rules have corners worth one
place and one test table:

* a **time** is an integer of unix nanoseconds, or of unix *seconds* when it has at most ten
  digits; a number with a point is float seconds (rounded to milliseconds); anything else
  must be RFC3339 (``2024-05-01T12:00:00.5Z``);
* ``end`` defaults to now, ``start`` to ``min(end, now) - since`` (``since`` defaults to 1h);
* a **step** (or ``interval``) is float seconds or a duration (``15s``, ``60000ms``);
  the default step is ``max(floor((end - start) / 250 s), 1 s)``;
* ``limit`` defaults to 100 and must be positive; ``direction`` is ``forward`` or
  ``backward`` (any case), default ``backward``.

Every problem is a :class:`ParameterError` naming the parameter (served as HTTP 400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

from logpipe.errors import UsageError
from logpipe.logql.units import parse_duration

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SINCE_NS",
    "Direction",
    "InstantParams",
    "ParameterError",
    "Params",
    "RangeParams",
    "default_step_ns",
    "parse_bounds",
    "parse_direction",
    "parse_instant",
    "parse_limit",
    "parse_range",
    "parse_step",
    "parse_time",
]

Direction = Literal["forward", "backward"]

NS_PER_S = 1_000_000_000
DEFAULT_LIMIT = 100
DEFAULT_SINCE_NS = 3600 * NS_PER_S
_INT64_MAX = (1 << 63) - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


class ParameterError(UsageError):
    """A query parameter that cannot be used; the message names it (HTTP 400)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f'invalid parameter "{name}": {problem}')
        self.name = name


class Params:
    """A request's parameters: every value of each name, in order (``match[]`` repeats).

    Like Go's ``Request.Form.Get``, :meth:`get` gives the first value; an empty value counts
    as absent, as it does in Loki.
    """

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        self._values = {k: list(v) for k, v in values.items()}

    def get(self, name: str) -> str | None:
        found = self._values.get(name)
        return found[0] if found and found[0] != "" else None

    def get_all(self, name: str) -> list[str]:
        return [v for v in self._values.get(name, []) if v != ""]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _rfc3339_ns(value: str) -> int | None:
    m = _RFC3339.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        return None
    days_in_month = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
                     31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # fmt: skip
    if day > days_in_month[month - 1]:
        return None
    zone = m.group(8)
    offset_s = 0
    if zone not in ("Z", "z"):
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            return None
        offset_s = (zh * 3600 + zm * 60) * (1 if zone[0] == "+" else -1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    fraction = int((m.group(7) or "").ljust(9, "0"))
    return (seconds - offset_s) * NS_PER_S + fraction


def parse_time(value: str | None, default_ns: int, name: str) -> int:
    """Unix nanoseconds of a Loki time parameter (``default_ns`` when absent)."""
    if value is None:
        return default_ns
    value = value.strip()
    ns: int | None = None
    if "." in value and _RFC3339.fullmatch(value) is None:
        try:
            seconds = Decimal(value)
        except InvalidOperation:
            seconds = Decimal("NaN")
        if seconds.is_finite():
            millis = seconds.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
            ns = int(millis * NS_PER_S)
    elif _INTEGER.fullmatch(value):
        digits = value.lstrip("+-")
        ns = int(value) * NS_PER_S if len(digits) <= 10 else int(value)
    else:
        ns = _rfc3339_ns(value)
    if ns is None:
        raise ParameterError(
            name,
            f"cannot parse {value!r}: give unix nanoseconds, unix seconds (float) or an "
            "RFC3339 time such as 2024-05-01T12:00:00Z",
        )
    if not -_INT64_MAX <= ns <= _INT64_MAX:
        raise ParameterError(name, f"{value!r} is outside the nanosecond range (1678..2262)")
    return ns


def parse_step(value: str, name: str = "step") -> int:
    """Nanoseconds of a step or interval: float seconds (``15``, ``0.5``) or a duration
    (``15s``, ``60000ms``, ``1m30s``)."""
    text = value.strip()
    ns: int | None = None
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        try:
            ns = parse_duration(text)
        except ValueError:
            ns = None
    else:
        if seconds.is_finite() and abs(seconds) * NS_PER_S <= _INT64_MAX:
            ns = int(seconds * NS_PER_S)
    if ns is None:
        raise ParameterError(
            name, f"cannot parse {value!r} as a duration: give seconds (15) or a duration (15s)"
        )
    if ns > _INT64_MAX:
        raise ParameterError(name, f"{value!r} overflows a nanosecond count")
    return ns


def parse_limit(value: str | None, default: int = DEFAULT_LIMIT) -> int:
    """The ``limit`` parameter: a positive integer."""
    if value is None:
        return default
    if not _INTEGER.fullmatch(value.strip()):
        raise ParameterError("limit", f"{value!r} is not an integer")
    limit = int(value)
    if limit <= 0:
        raise ParameterError("limit", "limit must be a positive value")
    return limit


def parse_direction(value: str | None) -> Direction:
    """``forward`` or ``backward`` in any case; ``backward`` (newest first) by default."""
    if value is None:
        return "backward"
    folded = value.strip().lower()
    if folded == "forward":
        return "forward"
    if folded == "backward":
        return "backward"
    raise ParameterError("direction", f"{value!r} is neither forward nor backward")


def parse_bounds(params: Params, now_ns: int) -> tuple[int, int]:
    """``(start, end)`` from ``start``, ``end`` and ``since`` with Loki's defaults."""
    since_ns = DEFAULT_SINCE_NS
    since = params.get("since")
    if since is not None:
        try:
            since_ns = parse_duration(since.strip())
        except ValueError:
            raise ParameterError("since", f"cannot parse {since!r} as a duration (1h)") from None
    end = parse_time(params.get("end"), now_ns, "end")
    start = parse_time(params.get("start"), min(end, now_ns) - since_ns, "start")
    return start, end


def default_step_ns(start_ns: int, end_ns: int) -> int:
    """Loki's default step: the range over 250 points, whole seconds, at least 1 s."""
    return max((end_ns - start_ns) // NS_PER_S // 250, 1) * NS_PER_S


@dataclass(frozen=True)
class RangeParams:
    """A ``query_range`` request's parameters, checked."""

    query: str
    start_ns: int
    end_ns: int
    step_ns: int
    interval_ns: int | None
    limit: int
    direction: Direction


@dataclass(frozen=True)
class InstantParams:
    """A ``query`` (instant) request's parameters, checked."""

    query: str
    time_ns: int
    limit: int
    direction: Direction


def _query(params: Params) -> str:
    query = params.get("query")
    if query is None:
        raise ParameterError("query", "missing; give a LogQL query")
    return query


def parse_range(params: Params, now_ns: int) -> RangeParams:
    """Check a ``query_range`` request as Loki's HTTP layer does (the engine checks the
    limits: entries, points per series, range length)."""
    query = _query(params)
    start, end = parse_bounds(params, now_ns)
    if end < start:
        raise ParameterError("end", "end timestamp must not be before start time")
    step_text = params.get("step")
    step = default_step_ns(start, end) if step_text is None else parse_step(step_text)
    if step <= 0:
        raise ParameterError(
            "step",
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer",
        )
    interval_text = params.get("interval")
    interval = None if interval_text is None else parse_step(interval_text, "interval")
    if interval is not None and interval < 0:
        raise ParameterError("interval", "a negative interval is not accepted")
    return RangeParams(
        query=query,
        start_ns=start,
        end_ns=end,
        step_ns=step,
        interval_ns=interval,
        limit=parse_limit(params.get("limit")),
        direction=parse_direction(params.get("direction")),
    )


def parse_instant(params: Params, now_ns: int) -> InstantParams:
    """Check a ``query`` (instant) request: ``time`` defaults to now."""
    return InstantParams(
        query=_query(params),
        time_ns=parse_time(params.get("time"), now_ns, "time"),
        limit=parse_limit(params.get("limit")),
        direction=parse_direction(params.get("direction")),
    )
