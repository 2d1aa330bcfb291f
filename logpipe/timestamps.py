"""Timestamps: the time layouts of log headers, read into int64 nanoseconds since the epoch (UTC).

The log store orders, partitions and prunes by time, so every line needs one number: when it
happened. Log headers spell that number in dozens of ways (``081109 203615``, ``Jun 14
15:16:01``, ``20171223-22:15:29:606``, ``[Sun Dec 04 04:47:44 2005]``, ``1117838570``...).
This module describes each spelling once, as a typed :class:`TimeLayout`, and reads whole Arrow
arrays of them at once:

* a layout compiles to one RE2 pattern (what ``pyarrow.compute.extract_regex`` runs: named
  groups only, no lookaround), so matching runs in Arrow's C++ kernels;
* the captured digit strings are cast to integers by Arrow, and the calendar arithmetic
  (days from a civil date, Howard Hinnant's ``days_from_civil``) runs in numpy on whole
  columns. No Python code runs per line: this sits on the ingest hot path.

Entry points:

* :func:`timestamps_from_fields` — lines framed by a :class:`~logpipe.formats.LogFormat`: the
  preset (or format string) says which header fields hold the time and in which layout;
* :func:`detect_timestamps` — lines of unknown format: the layout whose first match lies near
  the start of the most sample lines wins, as :func:`~logpipe.formats.detect_framer` does;
* :func:`fill_forward` — a line without a timestamp (a stack-trace continuation) takes the
  time of the line before it;
* :func:`parse_timestamps` — the converter itself, for callers that hold a layout and want to
  tell "no timestamp here" from "a timestamp that names an impossible time".

Rules every entry point follows:

* **Invalid values are null, never an exception and never a wrong time**: month 13, Feb 30,
  hour 25, minute 60, a leap second (``:60``, which an int64 UTC count cannot hold), a zone
  offset ``+25:00``, or an instant outside the int64 nanosecond range (years before 1678 or
  after 2261). The caller counts nulls.
* **Time zones**: a zone written in the line (``Z``, ``+02:00``, ``+0200``, ``-07``) wins;
  otherwise the ``tz`` parameter applies: ``"UTC"`` (default), a fixed offset such as
  ``"+02:00"``, or an IANA name such as ``"Europe/Berlin"``. IANA names are resolved by
  Arrow's ``assume_timezone`` kernel against the system time-zone database (vectorised, so
  cheap); a wall-clock time that occurs twice (DST fall-back) takes the earlier instant, one
  that never occurs (spring-forward gap) is shifted to the earliest valid instant after it.
* **Year inference** for layouts without a year (syslog, Android logcat, Proxifier), see
  :func:`infer_years`: the newest line of the batch takes the most recent year that does not
  put it more than a day after a reference time (default: now; callers pass the file's
  mtime); earlier lines step back one year wherever the month goes *backwards* by more than
  six months from one line to the next (Dec → Jan read in file order is a new year, as
  syslog daemons roll over).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy
from logpipe.errors import FormatSpecError, UsageError
from logpipe.formats import PRESETS, compile_format

__all__ = [
    "LAYOUTS",
    "PRESET_TIMES",
    "TIMESTAMP_MIN_FRACTION",
    "TIMESTAMP_SAMPLE_LINES",
    "Field",
    "Literal",
    "OneOf",
    "OptionalGroup",
    "ParsedTimestamps",
    "Part",
    "PresetTime",
    "TimeLayout",
    "detect_layout",
    "detect_timestamps",
    "fill_forward",
    "infer_years",
    "layout",
    "parse_timestamps",
    "timestamps_from_fields",
]

TIMESTAMP_SAMPLE_LINES = 200
"""How many leading lines of a batch vote on its layout."""

TIMESTAMP_MIN_FRACTION = 0.5
"""The share of (non-null) sample lines the winning layout must match: a majority, so that a
stray number in a plain-text log is not read as an epoch. Lower it for logs where stack
traces outnumber header lines."""

_NS_PER_S = 1_000_000_000
_SECS_PER_DAY = 86_400
# Instants an int64 nanosecond count can hold, in whole seconds (fraction added afterwards).
_MIN_S = -(2**63) // _NS_PER_S + 1
_MAX_S = (2**63 - 1) // _NS_PER_S - 1
_MAX_MS = (2**63 - 1) // 1_000_000


# --------------------------------------------------------------------------------------
# Layout description
# --------------------------------------------------------------------------------------


class Part(enum.Enum):
    """What a field of a time layout holds. The value is the RE2 group name it captures as."""

    YEAR = "year"  # 4 digits
    YEAR2 = "year2"  # 2 digits: 69-99 → 19xx, 00-68 → 20xx (POSIX strptime's rule)
    MONTH = "month"  # number
    MONTH_NAME = "month_name"  # Jan..Dec, any case
    DAY = "day"  # zero-padded (or unpadded) number
    DAY_SPACE = "day_space"  # space-padded number: " 1" or "21"
    WEEKDAY_NAME = "weekday_name"  # Mon..Sun: matched, not captured, not checked
    HOUR = "hour"
    MINUTE = "minute"
    SECOND = "second"
    FRACTION = "fraction"  # decimal digits after the point: ".5" is 500 ms
    MILLIS = "millis"  # an integer count of milliseconds, unpadded (Java's "S"): ":5" is 5 ms
    ZONE = "zone"  # Z, ±HH, ±HHMM, ±HH:MM
    EPOCH_S = "epoch_s"  # seconds since the epoch
    EPOCH_MS = "epoch_ms"  # milliseconds since the epoch


@dataclass(frozen=True)
class Field:
    """One captured field of a layout, ``min_width`` to ``max_width`` characters wide (digits
    for numbers; ignored for names and zones)."""

    part: Part
    min_width: int
    max_width: int


@dataclass(frozen=True)
class Literal:
    """Text that must appear as is; a space matches one or more spaces (padding varies)."""

    text: str


@dataclass(frozen=True)
class OneOf:
    """Exactly one of these characters (ISO 8601's ``T`` or space, ``.`` or ``,``)."""

    chars: str


@dataclass(frozen=True)
class OptionalGroup:
    """Tokens that may be absent together (a fraction with its point, a zone)."""

    tokens: tuple[Field | Literal | OneOf, ...]


Token = Field | Literal | OneOf | OptionalGroup


@dataclass(frozen=True)
class TimeLayout:
    """A compiled time layout: a name, the spec it came from (see :func:`layout`) and its
    tokens. Hashable, so compiled regexes can be cached per layout."""

    name: str
    spec: str
    tokens: tuple[Token, ...]

    @property
    def parts(self) -> frozenset[Part]:
        found: set[Part] = set()
        for token in self.tokens:
            inner = token.tokens if isinstance(token, OptionalGroup) else (token,)
            found.update(t.part for t in inner if isinstance(t, Field))
        return frozenset(found)

    @property
    def has_year(self) -> bool:
        """False when the year must be inferred (:func:`infer_years`)."""
        return bool(self.parts & {Part.YEAR, Part.YEAR2, Part.EPOCH_S, Part.EPOCH_MS})

    @property
    def pattern(self) -> str:
        """The RE2 pattern of the layout, unanchored."""
        return "".join(_token_regex(token) for token in self.tokens)


_DIRECTIVES: Mapping[str, tuple[Part, int, int]] = MappingProxyType(
    {
        "Y": (Part.YEAR, 4, 4),
        "y": (Part.YEAR2, 2, 2),
        "m": (Part.MONTH, 2, 2),
        "b": (Part.MONTH_NAME, 3, 3),
        "d": (Part.DAY, 2, 2),
        "e": (Part.DAY_SPACE, 1, 2),
        "a": (Part.WEEKDAY_NAME, 3, 3),
        "H": (Part.HOUR, 2, 2),
        "M": (Part.MINUTE, 2, 2),
        "S": (Part.SECOND, 2, 2),
        "f": (Part.FRACTION, 1, 9),
        "L": (Part.MILLIS, 1, 3),
        "z": (Part.ZONE, 1, 6),
        "s": (Part.EPOCH_S, 10, 10),
        "Q": (Part.EPOCH_MS, 13, 13),
    }
)
_NUMERIC = frozenset(
    {
        Part.YEAR,
        Part.YEAR2,
        Part.MONTH,
        Part.DAY,
        Part.DAY_SPACE,
        Part.HOUR,
        Part.MINUTE,
        Part.SECOND,
        Part.FRACTION,
        Part.MILLIS,
        Part.EPOCH_S,
        Part.EPOCH_MS,
    }
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _layout_error(spec: str, column: int, problem: str) -> FormatSpecError:
    pointer = f"\n  {spec}\n  {' ' * column}^"
    return FormatSpecError(
        f"time layout '{spec}': {problem} at column {column + 1}; directives are "
        f"%{' %'.join(_DIRECTIVES)} (%-X unpadded, %NX exactly N digits), [..] one of these "
        f"characters, (..)? an optional group{pointer}"
    )


def _parse_spec(spec: str) -> tuple[Token, ...]:
    """Tokens of a strftime-like spec (grammar in :func:`layout`)."""
    tokens: list[Token] = []
    group: list[Field | Literal | OneOf] | None = None
    group_start = 0
    i = 0

    def add(token: Field | Literal | OneOf) -> None:
        target = tokens if group is None else group
        if isinstance(token, Literal) and target and isinstance(target[-1], Literal):
            previous = target.pop()
            assert isinstance(previous, Literal)
            token = Literal(previous.text + token.text)
        target.append(token)

    while i < len(spec):
        char = spec[i]
        if char == "%":
            match = re.compile(r"%(-|\d)?(.)").match(spec, i)
            if match is None:
                raise _layout_error(spec, i, "'%' at the end")
            flag, letter = match.group(1), match.group(2)
            if letter == "%" and flag is None:
                add(Literal("%"))
            elif letter in _DIRECTIVES:
                part, low, high = _DIRECTIVES[letter]
                if flag == "-":
                    low = 1
                elif flag is not None:
                    low = high = int(flag)
                add(Field(part, low, high))
            else:
                raise _layout_error(spec, i, f"unknown directive %{letter}")
            i = match.end()
        elif char == "[":
            end = spec.find("]", i + 1)
            if end <= i + 1:
                raise _layout_error(spec, i, "unclosed or empty '['")
            add(OneOf(spec[i + 1 : end]))
            i = end + 1
        elif char == "(":
            if group is not None:
                raise _layout_error(spec, i, "nested optional group")
            group, group_start = [], i
            i += 1
        elif char == ")":
            if group is None or not spec.startswith(")?", i):
                raise _layout_error(spec, i, "')' must close an optional group as ')?'")
            tokens.append(OptionalGroup(tuple(group)))
            group = None
            i += 2
        else:
            add(Literal(char))
            i += 1
    if group is not None:
        raise _layout_error(spec, group_start, "unclosed optional group")
    return tuple(tokens)


def _check_parts(spec: str, tokens: Sequence[Token]) -> None:
    seen: list[Part] = []
    for token in tokens:
        inner = token.tokens if isinstance(token, OptionalGroup) else (token,)
        seen.extend(t.part for t in inner if isinstance(t, Field))
    groups = [_group(p) for p in seen if p is not Part.WEEKDAY_NAME]
    duplicates = sorted({g for g in groups if groups.count(g) > 1})
    problem = ""
    if duplicates:
        problem = f"field(s) {', '.join(duplicates)} given twice"
    elif Part.EPOCH_S in seen or Part.EPOCH_MS in seen:
        extra = set(seen) - {Part.EPOCH_S, Part.EPOCH_MS, Part.FRACTION}
        if extra or {Part.EPOCH_S, Part.EPOCH_MS} <= set(seen):
            problem = "an epoch field stands alone (optionally with %f after %s)"
    else:
        required = (
            ({Part.MONTH, Part.MONTH_NAME}, "a month (%m or %b)"),
            ({Part.DAY, Part.DAY_SPACE}, "a day (%d or %e)"),
            ({Part.HOUR}, "an hour (%H)"),
            ({Part.MINUTE}, "a minute (%M)"),
        )
        missing = [what for options, what in required if not options & set(seen)]
        if missing:
            problem = f"no {', '.join(missing)}"
        elif Part.FRACTION in seen and Part.MILLIS in seen:
            problem = "both %f and %L"
    if problem:
        raise FormatSpecError(f"time layout '{spec}': {problem}")


def layout(spec: str, name: str | None = None) -> TimeLayout:
    """Compile a strftime-like time layout spec such as ``%Y-%m-%d[T ]%H:%M:%S([.,]%f)?(%z)?``.

    Directives: ``%Y`` 4-digit year, ``%y`` 2-digit year, ``%m`` month, ``%b`` month name,
    ``%d`` day, ``%e`` space-padded day, ``%a`` weekday name (ignored), ``%H %M %S``, ``%f``
    decimal fraction (1-9 digits, more are read and truncated), ``%L`` integer milliseconds,
    ``%z`` zone, ``%s`` epoch seconds (10 digits), ``%Q`` epoch milliseconds (13 digits).
    ``%-X`` accepts 1 or 2 digits (unpadded), ``%NX`` exactly N digits. ``[..]`` is one of the
    characters, ``(..)?`` an optional group; other characters are literal, a space matching
    one or more spaces. Raises :class:`~logpipe.errors.FormatSpecError` for a spec that
    cannot name a time (no day, duplicate fields, an epoch mixed with calendar fields).
    """
    tokens = _parse_spec(spec)
    _check_parts(spec, tokens)
    return TimeLayout(name=name or spec, spec=spec, tokens=tokens)


def _group(part: Part) -> str:
    return "day" if part is Part.DAY_SPACE else part.value


def _escape(text: str) -> str:
    out = []
    for char in text:
        if char == " ":
            out.append(" +")
        elif char.isalnum() or char == "_":
            out.append(char)
        else:
            out.append("\\" + char)
    return "".join(out)


def _token_regex(token: Token) -> str:
    if isinstance(token, Literal):
        return _escape(token.text)
    if isinstance(token, OneOf):
        return "[" + "".join("\\" + c if not c.isalnum() else c for c in token.chars) + "]"
    if isinstance(token, OptionalGroup):
        return "(?:" + "".join(_token_regex(t) for t in token.tokens) + ")?"
    part, group = token.part, _group(token.part)
    if part is Part.MONTH_NAME:
        return f"(?P<{group}>(?i:{'|'.join(_MONTHS)}))"
    if part is Part.WEEKDAY_NAME:
        return f"(?i:{'|'.join(_WEEKDAYS)})"
    if part is Part.ZONE:
        return rf"(?P<{group}>Z|[+-]\d{{2}}(?::?\d{{2}})?)"
    digits = rf"(?P<{group}>\d{{{token.min_width},{token.max_width}}})"
    if part is Part.DAY_SPACE:
        return " ?" + digits
    if part is Part.FRACTION and token.max_width == 9:
        return digits + r"\d*"  # sub-nanosecond digits are read and dropped
    return digits


# --------------------------------------------------------------------------------------
# The layouts we know
# --------------------------------------------------------------------------------------

LAYOUTS: Mapping[str, TimeLayout] = MappingProxyType(
    {
        name: layout(spec, name)
        for name, spec in (
            # Most specific first: detection breaks ties (same count, same position) by order.
            ("rfc3339", "%Y-%m-%d[Tt ]%H:%M:%S([.]%f)?%z"),
            ("iso8601", "%Y-%m-%d[T ]%H:%M:%S([.,]%f)?(%z)?"),
            ("clf", "%d/%b/%Y:%H:%M:%S %z"),  # common log format: 10/Oct/2000:13:55:36 -0700
            ("ctime", "%a %b %e %H:%M:%S %Y"),  # Apache: Sun Dec 04 04:47:44 2005
            ("bgl", "%Y-%m-%d-%H.%M.%S.%f"),  # BGL's Time: 2005-06-03-15.42.50.675872
            ("healthapp", "%Y%m%d-%-H:%-M:%-S:%L"),  # 20171223-22:15:29:606
            ("yy/mm/dd", "%y/%m/%d %H:%M:%S"),  # Spark: 17/06/09 20:10:40
            ("yymmdd", "%y%m%d %H%M%S"),  # HDFS: 081109 203615
            ("syslog", "%b %e %H:%M:%S"),  # RFC 3164: Jun 14 15:16:01 (no year)
            ("logcat", "%m-%d %H:%M:%S.%f"),  # Android: 03-17 16:13:38.811 (no year)
            ("proxifier", "%m.%d %H:%M:%S"),  # [10.30 16:49:06] (no year)
            ("epoch_ms", "%Q"),
            ("epoch_s", "%s([.]%f)?"),
        )
    }
)
"""Every layout this module knows, by name, in detection order."""


@dataclass(frozen=True)
class PresetTime:
    """Where a Loghub preset keeps its time: the header fields (joined with one space, in
    this order) and their layout."""

    fields: tuple[str, ...]
    layout: TimeLayout


PRESET_TIMES: Mapping[str, PresetTime] = MappingProxyType(
    {
        "HDFS": PresetTime(("Date", "Time"), LAYOUTS["yymmdd"]),
        "Hadoop": PresetTime(("Date", "Time"), LAYOUTS["iso8601"]),
        "Spark": PresetTime(("Date", "Time"), LAYOUTS["yy/mm/dd"]),
        "Zookeeper": PresetTime(("Date", "Time"), LAYOUTS["iso8601"]),
        # BGL and Thunderbird also write a local wall-clock time; the epoch is UTC by definition.
        "BGL": PresetTime(("Timestamp",), LAYOUTS["epoch_s"]),
        "HPC": PresetTime(("Time",), LAYOUTS["epoch_s"]),
        "Thunderbird": PresetTime(("Timestamp",), LAYOUTS["epoch_s"]),
        "Linux": PresetTime(("Month", "Date", "Time"), LAYOUTS["syslog"]),
        "HealthApp": PresetTime(("Time",), LAYOUTS["healthapp"]),
        "Apache": PresetTime(("Time",), LAYOUTS["ctime"]),
        "Proxifier": PresetTime(("Time",), LAYOUTS["proxifier"]),
        "OpenSSH": PresetTime(("Date", "Day", "Time"), LAYOUTS["syslog"]),  # Date is the month
        "OpenStack": PresetTime(("Date", "Time"), LAYOUTS["iso8601"]),
        "Mac": PresetTime(("Month", "Date", "Time"), LAYOUTS["syslog"]),
        "Android": PresetTime(("Date", "Time"), LAYOUTS["logcat"]),
        "Windows": PresetTime(("Date", "Time"), LAYOUTS["iso8601"]),
    }
)
"""The time fields and layout of each of the 16 Loghub :data:`~logpipe.formats.PRESETS`."""

_PRESET_BY_FOLDED_NAME = {name.casefold(): name for name in PRESETS}

# Header field names that may hold (part of) a time, for format strings that are not presets.
_TIME_FIELD_NAMES = frozenset(
    {"date", "time", "timestamp", "datetime", "month", "day", "year", "zone", "ts"}
)


# --------------------------------------------------------------------------------------
# Vectorised calendar arithmetic (numpy, whole columns)
# --------------------------------------------------------------------------------------

_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm), for
    in-range months and days; exact integer arithmetic, no tables, no loops."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: np.ndarray = era * 146097 + doe - 719468
    return days


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    result: np.ndarray = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return result


def infer_years(
    month: np.ndarray,
    day: np.ndarray,
    second_of_day: np.ndarray,
    usable: np.ndarray,
    reference_s: int,
) -> np.ndarray:
    """The year of each line of a batch whose layout has none.

    ``month`` (1-12), ``day`` and ``second_of_day`` (UTC seconds from the line's local
    midnight, i.e. the clock time minus the zone offset) describe each line; ``usable`` marks
    lines with a plausible month and day, the only ones that vote.

    The rule, as syslog readers apply it: lines are in time order. Reading them in file
    order, wherever the month goes back by more than six (Dec → Jan, Nov → Feb) a new year
    began. The newest line (the last usable one) takes the most recent year that does not
    put it more than one day after ``reference_s`` (the day absorbs clock skew and zone
    offsets); earlier lines take that year minus the number of rollovers after them. A small
    step back (Jul → Jun) is out-of-order logging, not a new year. A batch is one unit: a
    caller reading a file in several batches passes the same reference to each, which is
    consistent as long as the file spans less than a year. Lines that are not usable get the
    newest line's year (their time is null anyway).
    """
    years = np.empty(len(month), dtype=np.int64)
    index = np.flatnonzero(usable)
    ref_year = dt.datetime.fromtimestamp(reference_s, tz=dt.UTC).year
    if len(index) == 0:
        years.fill(ref_year)
        return years
    months = month[index]
    rollover = np.zeros(len(index), dtype=np.int64)
    rollover[1:] = months[1:] < months[:-1] - 6
    passed = np.cumsum(rollover)
    last = index[-1]
    candidates = np.array([ref_year + 1, ref_year, ref_year - 1], dtype=np.int64)
    days = _days_from_civil(candidates, np.full(3, month[last]), np.full(3, day[last]))
    not_future = days * _SECS_PER_DAY + second_of_day[last] <= reference_s + _SECS_PER_DAY
    # ref_year - 1 is never more than a day ahead of a reference in ref_year.
    anchor = int(candidates[int(np.argmax(not_future))])
    years.fill(anchor)
    years[index] = anchor - (passed[-1] - passed)
    return years


# --------------------------------------------------------------------------------------
# The converter
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedTimestamps:
    """What :func:`parse_timestamps` read: ``ns`` (int64 nanoseconds since the epoch, UTC;
    null where there is no valid time) and ``matched`` (bool: the layout's pattern matched).
    ``matched & is_null(ns)`` are lines with an impossible time (Feb 30), for the caller to
    count."""

    ns: pa.Array
    matched: pa.Array

    @property
    def invalid_count(self) -> int:
        """Lines whose text fits the layout but names no real instant."""
        return self.matched_count - (len(self.ns) - int(self.ns.null_count))

    @property
    def matched_count(self) -> int:
        return int(pc.sum(self.matched).as_py() or 0)


_FIXED_TZ = re.compile(r"(?P<sign>[+-])(?P<hh>\d{2})(?::?(?P<mm>\d{2}))?")


def _fixed_offset_s(tz: str) -> int | None:
    """The offset east of UTC in seconds of a fixed zone ("UTC", "Z", "+02:00", "-0700"), or
    None for anything else (an IANA name)."""
    if tz in {"UTC", "Z", "utc", "GMT", "Etc/UTC"}:
        return 0
    match = _FIXED_TZ.fullmatch(tz)
    if match is None:
        return None
    hours, minutes = int(match["hh"]), int(match["mm"] or 0)
    if hours > 23 or minutes > 59:
        raise UsageError(f"time zone {tz!r}: offset out of range; use ±HH:MM up to ±23:59")
    sign = -1 if match["sign"] == "-" else 1
    return sign * (hours * 3600 + minutes * 60)


@functools.lru_cache(maxsize=64)
def _check_iana(tz: str) -> None:
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("ns")), timezone=tz)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UsageError(
            f"unknown time zone {tz!r}: give 'UTC', a fixed offset such as '+02:00', or an"
            f" IANA name such as 'Europe/Berlin' ({exc})"
        ) from exc


_BOUNDARY = "[^0-9A-Za-z]"  # what may precede a timestamp found inside a line
_END = "(?:[^0-9]|$)"  # what may follow it: not a digit (a 13-digit number is no epoch_s)


@functools.lru_cache(maxsize=256)
def _regex(layout: TimeLayout, max_offset: int | None) -> str:
    """The pattern that finds ``layout``: the whole value (``max_offset=None``), or the
    first timestamp starting within ``max_offset`` characters of the line's start, at a word
    boundary (RE2 has no lookbehind, so the boundary character is consumed). Its ``pre``
    group is what precedes the timestamp. Used on small samples: the bounded lazy prefix
    makes RE2's submatch engine slow on long batches (see :func:`_extract`)."""
    if max_offset is None:
        return f"^(?:{layout.pattern})$"
    prefix = rf"^(?P<pre>(?:.{{0,{max(max_offset - 1, 0)}}}?{_BOUNDARY})??)"
    return f"{prefix}(?:{layout.pattern}){_END}"


@functools.lru_cache(maxsize=256)
def _search_regexes(layout: TimeLayout, max_offset: int) -> tuple[str, str]:
    """(window test without captures, leftmost match with captures) for :func:`_extract`."""
    window = rf"^(?:.{{0,{max(max_offset - 1, 0)}}}?{_BOUNDARY})??(?:{layout.pattern}){_END}"
    leftmost = f"(?:^|{_BOUNDARY})(?:{layout.pattern}){_END}"
    return window, leftmost


def _extract(
    values: pa.Array, time_layout: TimeLayout, max_offset: int | None
) -> tuple[np.ndarray, pa.StructArray]:
    """(matched, captured groups) of ``time_layout`` in each value.

    Searching whole lines is split in two because RE2 is fast at each half and slow at both
    at once: a capture-free window test runs on the DFA, and the leftmost match anywhere in
    the line is captured from the matched span only. A line passes when both hold; then the
    leftmost match *is* the first one in the window, so the captures are the right ones.
    """
    if max_offset is None:
        extracted = pc.extract_regex(values, pattern=_regex(time_layout, None))
        within = None
    else:
        window, leftmost = _search_regexes(time_layout, max_offset)
        extracted = pc.extract_regex(values, pattern=leftmost)
        within = pc.match_substring_regex(values, pattern=window)
        if within.null_count:
            within = pc.fill_null(within, False)
    if extracted.null_count:
        matched = extracted.is_valid().to_numpy(zero_copy_only=False)
    else:
        matched = np.ones(len(values), dtype=np.bool_)
    if within is not None:
        matched = matched & within.to_numpy(zero_copy_only=False)
    return matched, extracted


def _as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_null(values.type):
        return values.cast(pa.string())
    if not (
        pa.types.is_string(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_binary(values.type)
        or pa.types.is_large_binary(values.type)
    ):
        raise TypeError(f"timestamps are read from string or binary arrays, got {values.type}")
    return values


def _child_text(extracted: pa.StructArray, name: str) -> pa.Array:
    """A captured group as a string array, "" where it did not take part (or no match).

    Binary input gives binary groups; what a group captures is ASCII by construction, so
    viewing it as UTF-8 is safe.
    """
    child = extracted.field(name)
    if pa.types.is_binary(child.type):
        child = child.view(pa.string())
    elif pa.types.is_large_binary(child.type):
        child = child.view(pa.large_string())
    if child.null_count:
        child = pc.fill_null(child, "")
    return child


def _ints(extracted: pa.StructArray, name: str) -> np.ndarray:
    """A digit group as int64 (0 where it did not take part)."""
    padded = pc.utf8_lpad(_child_text(extracted, name), width=1, padding="0")
    values: np.ndarray = pc.cast(padded, pa.int64()).to_numpy()
    return values


def _fraction_ns(extracted: pa.StructArray) -> np.ndarray:
    """Decimal fraction digits as nanoseconds: "5" → 500_000_000, "" → 0."""
    digits = pc.utf8_rpad(_child_text(extracted, "fraction"), width=9, padding="0")
    digits = pc.utf8_slice_codeunits(digits, 0, 9)
    values: np.ndarray = pc.cast(digits, pa.int64()).to_numpy()
    return values


def _zones(extracted: pa.StructArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(has zone, offset east of UTC in seconds, offset valid) per line."""
    text = pc.replace_substring(_child_text(extracted, "zone"), ":", "")
    has_zone = pc.greater(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
    padded = pc.utf8_rpad(text, width=5, padding="0")  # "Z"→"Z0000", "-07"→"-0700"
    hours = pc.cast(pc.utf8_slice_codeunits(padded, 1, 3), pa.int64()).to_numpy()
    minutes = pc.cast(pc.utf8_slice_codeunits(padded, 3, 5), pa.int64()).to_numpy()
    west = pc.starts_with(padded, "-").to_numpy(zero_copy_only=False)
    offset = np.where(west, -1, 1) * (hours * 3600 + minutes * 60)
    return has_zone, offset, (hours <= 23) & (minutes <= 59)


def _int64_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """int64 values with nulls where ``valid`` is False (no numpy.ma, no copy of values)."""
    if valid.all():
        return from_numpy(values.astype(np.int64, copy=False))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(np.ascontiguousarray(values, dtype=np.int64))
    return pa.Array.from_buffers(pa.int64(), len(values), [bitmap, data])


def _reference_s(reference_ns: int | None) -> int:
    return (time.time_ns() if reference_ns is None else reference_ns) // _NS_PER_S


def parse_timestamps(
    text: pa.Array | pa.ChunkedArray,
    time_layout: TimeLayout,
    *,
    tz: str = "UTC",
    reference_ns: int | None = None,
    max_offset: int | None = None,
) -> ParsedTimestamps:
    """Read ``text`` (string or binary) in ``time_layout`` into UTC nanoseconds.

    With ``max_offset=None`` each value must be exactly one timestamp (a header field);
    otherwise the first timestamp starting within ``max_offset`` characters of the line's
    start is read (whole lines). ``tz`` applies to times without a zone of their own;
    ``reference_ns`` anchors year inference (default: now). Invalid values are null.
    """
    values = _as_text(text)
    fixed = _fixed_offset_s(tz)
    if fixed is None:
        _check_iana(tz)
    n = len(values)
    matched, extracted = _extract(values, time_layout, max_offset)
    matched_array = from_numpy(matched)
    if n == 0 or not matched.any():
        return ParsedTimestamps(pa.nulls(n, pa.int64()), matched_array)
    parts = time_layout.parts
    frac = _fraction_ns(extracted) if Part.FRACTION in parts else np.zeros(n, np.int64)
    if Part.EPOCH_S in parts or Part.EPOCH_MS in parts:
        if Part.EPOCH_MS in parts:
            ms = _ints(extracted, "epoch_ms")
            valid = matched & (ms <= _MAX_MS)
            ns = np.where(valid, ms, 0) * 1_000_000
        else:
            secs = _ints(extracted, "epoch_s")
            valid = matched & (secs <= _MAX_S)
            ns = np.where(valid, secs, 0) * _NS_PER_S + np.where(valid, frac, 0)
        return ParsedTimestamps(_int64_array(ns, valid), matched_array)

    if Part.MONTH_NAME in parts:
        names = pc.utf8_lower(_child_text(extracted, "month_name"))
        index = pc.index_in(names, value_set=pa.array(_MONTHS))
        month = pc.fill_null(index, -1).to_numpy().astype(np.int64) + 1
    else:
        month = _ints(extracted, "month")
    day = _ints(extracted, "day")
    hour = _ints(extracted, "hour")
    minute = _ints(extracted, "minute")
    second = _ints(extracted, "second") if Part.SECOND in parts else np.zeros(n, np.int64)
    if Part.MILLIS in parts:
        frac = _ints(extracted, "millis") * 1_000_000
    if Part.ZONE in parts:
        has_zone, zone_offset, zone_ok = _zones(extracted)
    else:
        has_zone = np.zeros(n, np.bool_)
        zone_offset = np.zeros(n, np.int64)
        zone_ok = np.ones(n, np.bool_)
    # Offset used before IANA resolution: the line's own, else the fixed tz (0 for IANA).
    offset = np.where(has_zone, zone_offset, fixed or 0)

    month_ok = (month >= 1) & (month <= 12)
    safe_month = np.clip(month, 1, 12)
    clock_s = hour * 3600 + minute * 60 + second
    if Part.YEAR in parts:
        year = _ints(extracted, "year")
    elif Part.YEAR2 in parts:
        yy = _ints(extracted, "year2")
        year = yy + np.where(yy < 69, 2000, 1900)
    else:
        usable = matched & month_ok & (day >= 1) & (day <= 31)
        safe_day = np.clip(day, 1, 31)
        reference_s = _reference_s(reference_ns)
        year = infer_years(safe_month, safe_day, clock_s - offset, usable, reference_s)

    valid = (
        matched
        & month_ok
        & (day >= 1)
        & (day <= _days_in_month(year, safe_month))
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & zone_ok
    )
    local_s = _days_from_civil(year, safe_month, np.clip(day, 1, 31)) * _SECS_PER_DAY + clock_s
    utc_s = local_s - offset
    valid &= (utc_s >= _MIN_S) & (utc_s <= _MAX_S)
    ns = np.where(valid, utc_s, 0) * _NS_PER_S + np.where(valid, frac, 0)
    if fixed is None and not has_zone.all():
        local = from_numpy(np.where(valid, local_s, 0) * _NS_PER_S + np.where(valid, frac, 0))
        resolved = pc.assume_timezone(
            local.view(pa.timestamp("ns")),
            timezone=tz,
            ambiguous="earliest",
            nonexistent="earliest",
        )
        ns = np.where(has_zone, ns, resolved.view(pa.int64()).to_numpy())
    return ParsedTimestamps(_int64_array(ns, valid), matched_array)


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _join(columns: Sequence[pa.Array]) -> pa.Array:
    if len(columns) == 1:
        return columns[0]
    return pc.binary_join_element_wise(*columns, " ")


def _field(fields: Mapping[str, pa.Array | pa.ChunkedArray], name: str) -> pa.Array:
    if name not in fields:
        raise UsageError(
            f"the log format has no <{name}> field, which holds the time; frame the lines with"
            f" the format the preset names (fields given: {', '.join(fields) or 'none'})"
        )
    return _as_text(fields[name])


def _time_field_candidates(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Field combinations to try for a format that is not a preset: all time-like fields
    joined in format order, then each alone (Thunderbird-like formats carry an epoch
    ``Timestamp`` beside a split date)."""
    timeish = tuple(name for name in names if name.casefold() in _TIME_FIELD_NAMES)
    if not timeish:
        return []
    singles = [(name,) for name in timeish] if len(timeish) > 1 else []
    return [timeish, *singles]


def timestamps_from_fields(
    fields: Mapping[str, pa.Array | pa.ChunkedArray],
    preset_or_format: str | None,
    *,
    tz: str = "UTC",
    reference_ns: int | None = None,
    sample_lines: int = TIMESTAMP_SAMPLE_LINES,
) -> pa.Array:
    """The time of each line framed by a log format, as int64 UTC nanoseconds (null where none).

    ``fields`` are the header columns of :attr:`~logpipe.formats.Framed.fields`.
    ``preset_or_format`` is a Loghub preset name (its fields and layout are in
    :data:`PRESET_TIMES`), a format string, or None (use the field names in ``fields``). For
    a format string or None, the time-like fields (``Date``, ``Time``, ``Timestamp``,
    ``Month``, ``Day``...) are joined with a space in format order and the layout that
    matches most of the first ``sample_lines`` values exactly is chosen (each such field alone
    is tried too); with no time-like fields or no layout matching a majority, all are null.
    """
    if preset_or_format is not None and "<" not in preset_or_format:
        key = _PRESET_BY_FOLDED_NAME.get(preset_or_format.casefold())
        if key is None:
            raise UsageError(
                f"unknown log format preset {preset_or_format!r}; known presets:"
                f" {', '.join(PRESETS)} (or give the format string itself)"
            )
        spec = PRESET_TIMES[key]
        text = _join([_field(fields, name) for name in spec.fields])
        return parse_timestamps(text, spec.layout, tz=tz, reference_ns=reference_ns).ns
    names = (
        list(fields)
        if preset_or_format is None
        else list(compile_format(preset_or_format).field_names)
    )
    n = len(next(iter(fields.values()))) if fields else 0
    best: tuple[int, pa.Array, TimeLayout] | None = None
    for combination in _time_field_candidates(names):
        text = _join([_field(fields, name) for name in combination])
        found = _best_layout(text[:sample_lines], None)
        if found is not None and (best is None or found[1] > best[0]):
            best = (found[1], text, found[0])
    if best is None:
        return pa.nulls(n, pa.int64())
    return parse_timestamps(best[1], best[2], tz=tz, reference_ns=reference_ns).ns


def _best_layout(
    sample: pa.Array, max_offset: int | None, min_fraction: float = TIMESTAMP_MIN_FRACTION
) -> tuple[TimeLayout, int] | None:
    """The layout matching most sample values (ties: the one starting earlier in the line,
    then the earlier in :data:`LAYOUTS`) and its count, if it reaches ``min_fraction`` of
    the non-blank values."""
    # Blank lines do not vote: they carry no timestamp in any layout.
    total = int(pc.sum(pc.match_substring_regex(sample, pattern=r"\S")).as_py() or 0)
    if total == 0:
        return None
    best: tuple[int, int, int] | None = None  # (-count, summed start offset, order)
    chosen: TimeLayout | None = None
    for order, candidate in enumerate(LAYOUTS.values()):
        extracted = pc.extract_regex(sample, pattern=_regex(candidate, max_offset))
        count = len(extracted) - extracted.null_count
        if count == 0:
            continue
        offsets = 0
        if max_offset is not None:
            offsets = int(
                pc.sum(
                    pc.binary_length(extracted.field("pre").filter(extracted.is_valid()))
                ).as_py()
                or 0
            )
        key = (-count, offsets, order)
        if best is None or key < best:
            best, chosen = key, candidate
    if best is None or chosen is None or -best[0] < min_fraction * total:
        return None
    return chosen, -best[0]


def detect_layout(
    sample: pa.Array | pa.ChunkedArray | Sequence[str],
    *,
    max_offset: int = 64,
    min_fraction: float = TIMESTAMP_MIN_FRACTION,
) -> TimeLayout | None:
    """The layout of the first timestamp near the start of most ``sample`` lines, or None.

    A layout counts a line when a timestamp in it starts within ``max_offset`` characters
    of the line's start. Most lines wins; on a tie the layout found nearer the start of the
    lines (an epoch before a local wall-clock time, as in BGL), then the earlier one of
    :data:`LAYOUTS`. It must match at least ``min_fraction`` of the non-blank lines.
    """
    if isinstance(sample, pa.Array | pa.ChunkedArray):
        values = _as_text(sample)
    else:
        values = pa.array(list(sample), pa.string())
    found = _best_layout(values, max_offset, min_fraction)
    return None if found is None else found[0]


def detect_timestamps(
    lines: pa.Array | pa.ChunkedArray,
    *,
    tz: str = "UTC",
    reference_ns: int | None = None,
    sample_lines: int = TIMESTAMP_SAMPLE_LINES,
    max_offset: int = 64,
    min_fraction: float = TIMESTAMP_MIN_FRACTION,
) -> pa.Array:
    """The first timestamp near the start of each line (string or binary), as int64 UTC
    nanoseconds, for logs of unknown format.

    The layout is chosen once per batch from its first ``sample_lines`` lines by
    :func:`detect_layout`, so one odd line cannot switch layouts mid-batch; lines where that
    layout is not found (continuations) are null. All null when no layout wins.
    """
    values = _as_text(lines)
    chosen = detect_layout(values[:sample_lines], max_offset=max_offset, min_fraction=min_fraction)
    if chosen is None:
        return pa.nulls(len(values), pa.int64())
    return parse_timestamps(
        values, chosen, tz=tz, reference_ns=reference_ns, max_offset=max_offset
    ).ns


def fill_forward(ts: pa.Array | pa.ChunkedArray, default_ns: int) -> pa.Array:
    """Each null takes the last non-null time before it; leading nulls take ``default_ns``.

    A stack-trace continuation or a wrapped message has no header of its own but belongs
    to the line above, so it sorts and is stored with it. ``default_ns`` is what a caller
    knows when the batch starts headless: the previous batch's last time, or the file's mtime.
    """
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    values = ts.cast(pa.int64()) if not pa.types.is_int64(ts.type) else ts
    if values.null_count == 0:
        return values
    filled: pa.Array = pc.fill_null(pc.fill_null_forward(values), pa.scalar(default_ns, pa.int64()))
    return filled
