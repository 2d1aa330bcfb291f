"""Log formats: split raw lines into header fields and the message body (``Content``).

A *framer* separates what the logging library wrote (timestamp, level, component, ...) from
what the program said (the ``Content`` the template miner sees). Mining templates on whole
lines would turn every timestamp into a variable and every level into a separate template, so
framing comes first in the pipeline.

Framers work on whole Arrow arrays so that the header regex runs in Arrow's C++ kernels (RE2,
``pyarrow.compute.extract_regex``), not per line in Python: framing sits on the hot path of
every line ingested.

Kinds of framer, all implementing :class:`Framer`:

* :class:`LogFormat` — a Loghub-style format string such as
  ``<Date> <Time> <Level> <Component>: <Content>``, compiled by :func:`compile_format`, or one
  of the 16 Loghub systems by name (:data:`PRESETS`, :func:`preset`);
* :class:`PatternFramer` — a hand-written, stricter regex for a well-known layout (syslog,
  ISO timestamp + level); used by detection, where a lazy Loghub format would match nearly
  any line and so could not tell layouts apart;
* :class:`JsonFramer`, :class:`LogfmtFramer` — structured lines, parsed per line in Python;
* :class:`PlainFramer` — no header at all: the whole line is the content.

:func:`resolve_framer` picks one from the user's flags, falling back to :func:`detect_framer`.

Loghub semantics, kept exactly so that our ``*_structured.csv`` equals Loghub's for the same
format (Loghub's benchmark ``generate_logformat_regex`` / ``log_to_dataframe``):

* the text between ``<Field>`` placeholders is a regular expression (``\\[``, ``\\|``, and
  optional groups such as ``(\\[<PID>\\])?`` work), in which every run of spaces matches
  ``\\s+`` (one or more whitespace characters);
* each header field is a lazy ``.*?``; ``Content`` is ``.*``; the whole line is anchored;
* a line is stripped of surrounding whitespace before matching (Loghub matches
  ``line.strip()``); this also drops the ``\\r`` of CRLF input.

Where we differ, on purpose: unnamed groups in the literal text become non-capturing (RE2,
which Arrow uses, only extracts named groups); an escaped space (``\\ ``) and a space inside a
character class stay literal spaces; the format is wrapped in ``(?:...)`` before anchoring so a
top-level ``|`` cannot escape the anchors; and ``Content`` is greedy where Loghub's is lazy,
which only matters for formats where ``Content`` is not last (none of Loghub's).

A field inside an optional group that did not take part in the match is the empty string (not
null): that is what Loghub's CSV files hold, and it keeps "line did not match" (null fields)
apart from "field absent in a matching line".
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.errors import FormatSpecError, UsageError
from logpipe.framing_structured import (
    JSON_CONTENT_KEYS,
    LOGFMT_CONTENT_KEYS,
    StructuredRecord,
    json_record,
    logfmt_record,
)

__all__ = [
    "CONTENT",
    "DETECTION_MIN_FRACTION",
    "DETECTION_SAMPLE_LINES",
    "PRESETS",
    "Framed",
    "Framer",
    "JsonFramer",
    "LogFormat",
    "LogfmtFramer",
    "PatternFramer",
    "PlainFramer",
    "compile_format",
    "detect_framer",
    "preset",
    "resolve_framer",
]

CONTENT = "Content"
"""The field that holds the message body in a format string."""

DETECTION_SAMPLE_LINES = 200
"""How many leading lines callers should pass to :func:`detect_framer`."""

DETECTION_MIN_FRACTION = 0.8
"""The share of sample lines a layout must match to be chosen: a clear majority, so that a
layout that happens to fit a few lines never wins over the plain framer."""


@dataclass(frozen=True)
class Framed:
    """The result of framing a batch of lines.

    ``fields`` maps each header field name (in format order, ``Content`` excluded) to a
    string array, null where the line did not match. ``content`` is the message body, or the
    whole line where it did not match. ``matched`` is False for lines that did not match.
    """

    fields: dict[str, pa.Array]
    content: pa.Array
    matched: pa.Array


class Framer(Protocol):
    """Anything that frames lines: a Loghub format string, JSON lines, logfmt, syslog."""

    @property
    def name(self) -> str: ...

    @property
    def field_names(self) -> tuple[str, ...]: ...

    def frame(self, lines: pa.Array) -> Framed: ...


PRESETS: Mapping[str, str] = MappingProxyType(
    {
        # The 14 systems of Loghub-2.0's 2k benchmark, then Android and Windows (Loghub).
        "HDFS": r"<Date> <Time> <Pid> <Level> <Component>: <Content>",
        "Hadoop": r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
        "Spark": r"<Date> <Time> <Level> <Component>: <Content>",
        "Zookeeper": r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
        "BGL": (
            r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level>"
            r" <Content>"
        ),
        "HPC": r"<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
        "Thunderbird": (
            r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location>"
            r" <Component>(\[<PID>\])?: <Content>"
        ),
        "Linux": r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
        "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
        "Apache": r"\[<Time>\] \[<Level>\] <Content>",
        "Proxifier": r"\[<Time>\] <Program> - <Content>",
        "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
        "OpenStack": r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
        "Mac": r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
        "Android": r"<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
        "Windows": r"<Date> <Time>, <Level>                  <Component>    <Content>",
    }
)
"""Loghub's log format for each of its 16 systems, keyed by system name."""

_PRESET_BY_FOLDED_NAME = {name.casefold(): name for name in PRESETS}


# --------------------------------------------------------------------------------------
# Shared vectorised helpers
# --------------------------------------------------------------------------------------


def _as_lines(lines: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Accept what callers naturally hold (an array or a column) as one string array.

    Binary input is refused rather than decoded here: deciding how to decode undecodable
    bytes is the reader's job (it records ``invalid_utf8``), not the framer's.
    """
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if pa.types.is_null(lines.type):
        return lines.cast(pa.string())
    if not (pa.types.is_string(lines.type) or pa.types.is_large_string(lines.type)):
        raise TypeError(f"framers take string arrays, got {lines.type}; decode the lines first")
    return lines


def _strip_eol(lines: pa.Array) -> pa.Array:
    """The line without a trailing ``\\r`` (CRLF input) or stray newline: an unmatched
    line's content, which must not carry line-terminator bytes into templates."""
    return pc.utf8_rtrim(lines, characters="\r\n")


def _frame_with_regex(
    lines: pa.Array, regex: str, field_groups: Iterable[tuple[str, str]], content_group: str
) -> Framed:
    """Frame ``lines`` with one anchored regex whose named groups are the fields.

    One ``extract_regex`` call over the whole array does the work; Python only shuffles
    column objects.
    """
    text = _as_lines(lines)
    subject = pc.utf8_trim_whitespace(text)  # Loghub matches line.strip()
    extracted = pc.extract_regex(subject, pattern=regex)
    # flatten() (unlike .field()) applies the struct's nulls, so fields of an unmatched line
    # are null rather than the empty strings the kernel leaves underneath.
    columns = dict(zip((f.name for f in extracted.type), extracted.flatten(), strict=True))
    matched = pc.is_valid(extracted)
    content = columns[content_group]
    if extracted.null_count:
        content = pc.if_else(matched, content, _strip_eol(text))
    fields = {name: columns[group] for name, group in field_groups}
    return Framed(fields=fields, content=content, matched=matched)


# --------------------------------------------------------------------------------------
# Loghub-style format strings
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFormat:
    """A compiled Loghub-style format string.

    ``regex`` is anchored and valid for both RE2 (which frames) and Python ``re``.
    ``group_names`` holds the regex group of each field in ``field_names``: the field name
    itself where it is a valid group name, a generated ``_lpN`` otherwise (``<Log Level>``,
    ``<Zeit>`` with an umlaut...); empty means "the same as ``field_names``".
    """

    spec: str
    field_names: tuple[str, ...]
    regex: str
    group_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec

    def frame(self, lines: pa.Array) -> Framed:
        """Split each line into header fields and content (one RE2 pass over the array)."""
        groups = self.group_names or self.field_names
        return _frame_with_regex(
            lines, self.regex, zip(self.field_names, groups, strict=True), CONTENT
        )


_FIELD = re.compile(r"<([^<>]+)>")  # Loghub's placeholder syntax
_SAFE_GROUP = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # valid for RE2 and Python alike


class _RegexBuilder:
    """Collects regex text and, for every character, the spec column it came from, so that
    a regex compile error can point at the column of the format string that caused it."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.origin: list[int] = []

    def emit(self, text: str, column: int) -> None:
        self._parts.append(text)
        self.origin.extend([column] * len(text))

    @property
    def text(self) -> str:
        return "".join(self._parts)


def _translate_literal(literal: str, column: int, out: _RegexBuilder) -> None:
    """Emit the literal text between two fields as regex.

    Runs of spaces become ``\\s+`` and capturing ``(`` becomes ``(?:``, both outside escapes
    and character classes. Everything else is passed through: it *is* a regex.
    """
    i = 0
    in_class = False
    class_start = -1
    n = len(literal)
    while i < n:
        char = literal[i]
        if char == "\\" and i + 1 < n:
            out.emit(literal[i : i + 2], column + i)
            i += 2
            continue
        if in_class:
            # "]" closes the class unless it is the class's first character ([]...] / [^]...]).
            if char == "]" and i > class_start:
                in_class = False
            out.emit(char, column + i)
            i += 1
            continue
        if char == "[":
            in_class = True
            class_start = i + 1
            if literal.startswith("^", class_start):
                class_start += 1
            out.emit(char, column + i)
            i += 1
            continue
        if char == " ":
            run_end = i
            while run_end < n and literal[run_end] == " ":
                run_end += 1
            out.emit(r"\s+", column + i)
            i = run_end
            continue
        if char == "(" and not literal.startswith("?", i + 1):
            out.emit("(?:", column + i)
            i += 1
            continue
        out.emit(char, column + i)
        i += 1


def _spec_error(
    spec: str, column: int | None, problem: str, advice: str, detail: str = ""
) -> FormatSpecError:
    """A FormatSpecError naming the format, the 1-based column and what to do, with a caret
    under the offending character."""
    if column is None:
        return FormatSpecError(f"log format '{spec}': {problem}{detail}; {advice}")
    pointer = f"\n  {spec}\n  {' ' * column}^"
    return FormatSpecError(
        f"log format '{spec}': {problem} at column {column + 1}{detail}; {advice}{pointer}"
    )


_REGEX_ADVICE = (
    "the text between <Field> placeholders is a regular expression (RE2 syntax, also valid "
    r"for Python re): escape special characters such as \[ \] \( \) \| \. with a backslash"
)


def _check_regex(spec: str, body: str, origin: Sequence[int], regex: str) -> None:
    """Reject a format whose regex Python ``re`` or RE2 cannot compile, pointing at the
    column of the spec that caused it (``origin`` maps each character of ``body``, the regex
    before the anchors are wrapped around it, to its spec column).

    Both dialects must accept it: RE2 frames the lines, while downstream tools (and Loghub's
    own scripts) use Python ``re`` on the same format, and the two differ (lookaround and
    backreferences are Python-only, ``\\z`` and POSIX classes are RE2-only). Python checks the
    bare body, so that an unbalanced parenthesis is blamed on itself and not on the wrapper.
    """

    def column_at(index: int) -> int:
        return origin[index] if 0 <= index < len(origin) else len(spec)

    try:
        with warnings.catch_warnings():
            # "Possible nested set" FutureWarnings are advice, not errors; RE2 judges below.
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(body)
    except re.error as exc:
        column = column_at(len(body) if exc.pos is None else exc.pos)
        raise _spec_error(
            spec, column, f"invalid regular expression ({exc.msg})", _REGEX_ADVICE
        ) from exc
    try:
        pc.extract_regex(pa.array([""], pa.string()), pattern=regex)
    except pa.ArrowInvalid as exc:
        message = str(exc).removeprefix("Invalid regular expression: ")
        # RE2 names the offending text ("invalid perl operator: (?="); find it in the body.
        fragment = message.rpartition(": ")[2]
        found = body.find(fragment) if fragment else -1
        raise _spec_error(
            spec,
            column_at(found) if found >= 0 else None,
            f"regular expression not supported by RE2 ({message})",
            _REGEX_ADVICE,
        ) from exc


@functools.lru_cache(maxsize=256)
def _compile_cached(spec: str) -> LogFormat:
    body = _RegexBuilder()
    field_names: list[str] = []
    group_names: list[str] = []
    first_column: dict[str, int] = {}
    pos = 0
    for match in _FIELD.finditer(spec):
        _translate_literal(spec[pos : match.start()], pos, body)
        name = match.group(1)
        column = match.start()
        if name in first_column:
            raise _spec_error(
                spec,
                column,
                f"duplicate field <{name}>",
                "give every field its own name",
                detail=f" (first at column {first_column[name] + 1})",
            )
        first_column[name] = column
        if name == CONTENT:
            body.emit(f"(?P<{CONTENT}>.*)", column)
        else:
            group = name if _SAFE_GROUP.fullmatch(name) else f"_lp{len(field_names)}"
            body.emit(f"(?P<{group}>.*?)", column)
            field_names.append(name)
            group_names.append(group)
        pos = match.end()
    _translate_literal(spec[pos:], pos, body)
    if CONTENT not in first_column:
        raise _spec_error(
            spec,
            None,
            "no <Content> field",
            "add <Content> where the message body starts, e.g. '<Date> <Time> <Content>'",
        )
    # The group keeps a top-level "|" in the literal text from escaping the anchors.
    regex = f"^(?:{body.text})$"
    _check_regex(spec, body.text, body.origin, regex)
    groups = re.compile(regex).groupindex
    for name, group in [*zip(field_names, group_names, strict=True), (CONTENT, CONTENT)]:
        if group not in groups:
            # e.g. "[<Thread>]": the brackets made a character class that swallowed the field
            raise _spec_error(
                spec,
                first_column[name],
                f"field <{name}> is inside a regex construct and cannot be captured",
                "escape literal brackets and parentheses, e.g. '\\[<Thread>\\]'",
            )
    return LogFormat(
        spec=spec, field_names=tuple(field_names), regex=regex, group_names=tuple(group_names)
    )


def compile_format(spec: str) -> LogFormat:
    """Compile a Loghub-style format string such as ``<Date> <Time> <Level>: <Content>``.

    Raises :class:`~logpipe.errors.FormatSpecError` (naming the format and the column) for a
    duplicate field, a missing ``<Content>``, or literal text that is not a valid regex.
    Compiled formats are cached: a daemon compiles the same few formats over and over.
    """
    return _compile_cached(spec)


def preset(name: str) -> LogFormat:
    """The Loghub format of a system by name (case-insensitive), e.g. ``preset("hdfs")``."""
    key = _PRESET_BY_FOLDED_NAME.get(name.casefold())
    if key is None:
        raise UsageError(
            f"unknown log format preset {name!r}; known presets: {', '.join(PRESETS)}"
            " (or give the format itself with --log-format)"
        )
    return compile_format(PRESETS[key])


# --------------------------------------------------------------------------------------
# Framers used by detection
# --------------------------------------------------------------------------------------


class PlainFramer:
    """No header: the whole line (minus a trailing ``\\r``) is the content.

    The fallback when nothing else fits; framing never loses a line, only its structure.
    """

    @property
    def name(self) -> str:
        return "plain"

    @property
    def field_names(self) -> tuple[str, ...]:
        return ()

    def frame(self, lines: pa.Array) -> Framed:
        text = _as_lines(lines)
        return Framed(fields={}, content=_strip_eol(text), matched=pc.is_valid(text))

    def __repr__(self) -> str:
        return "PlainFramer()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainFramer)

    def __hash__(self) -> int:
        return hash(PlainFramer)


@dataclass(frozen=True)
class PatternFramer:
    """A named layout framed by a hand-written regex (syslog, ISO timestamp + level).

    Unlike a Loghub format, whose lazy fields accept nearly any line with enough spaces,
    these regexes pin each field down (a month name, a level word), so the share of lines a
    layout matches is evidence for detection. ``regex`` must be valid RE2, anchored, with one
    named group per field (same name) plus ``Content``.
    """

    name: str
    field_names: tuple[str, ...]
    regex: str

    def frame(self, lines: pa.Array) -> Framed:
        pairs = ((name, name) for name in self.field_names)
        return _frame_with_regex(lines, self.regex, pairs, CONTENT)


def _frame_structured(
    lines: pa.Array, field_names: Sequence[str], parse: Callable[[str], StructuredRecord | None]
) -> Framed:
    """Frame line by line with a Python parser (JSON, logfmt)."""
    texts = _strip_eol(_as_lines(lines)).to_pylist()
    columns: dict[str, list[str | None]] = {name: [] for name in field_names}
    content: list[str | None] = []
    matched: list[bool] = []
    for text in texts:
        record = None if text is None else parse(text)
        if record is None:
            content.append(text)
            matched.append(False)
            for column in columns.values():
                column.append(None)
            continue
        _, body, values = record
        content.append(body)
        matched.append(True)
        for name, column in columns.items():
            column.append(values.get(name))
    return Framed(
        fields={name: pa.array(column, pa.string()) for name, column in columns.items()},
        content=pa.array(content, pa.string()),
        matched=pa.array(matched, pa.bool_()),
    )


def _sample_field_names(
    sample: Iterable[str], parse: Callable[[str], StructuredRecord | None]
) -> tuple[str, ...]:
    """Header fields of a structured framer: every non-content key seen in the sample, in
    first-seen order. The set is fixed from the sample so that every batch has the same
    columns; keys that only appear later are left out of the fields (the raw line keeps
    them)."""
    names: dict[str, None] = {}
    for line in sample:
        record = parse(line.rstrip("\r\n"))
        if record is not None:
            names.update(dict.fromkeys(record[2]))
    return tuple(names)


@dataclass(frozen=True)
class JsonFramer:
    """JSON-lines framer: one object per line.

    Content is the value of the first of ``content_keys`` present in the object; every other
    top-level key is a header field, stringified (nested values JSON-encoded). A line without
    any content key keeps the whole line as content. Lines that are not JSON objects are kept
    unmatched.
    """

    field_names: tuple[str, ...]
    content_keys: tuple[str, ...] = JSON_CONTENT_KEYS

    @property
    def name(self) -> str:
        return "json"

    @classmethod
    def from_sample(cls, sample: Iterable[str]) -> JsonFramer:
        return cls(field_names=_sample_field_names(sample, json_record))

    def frame(self, lines: pa.Array) -> Framed:
        keys = self.content_keys
        return _frame_structured(lines, self.field_names, lambda line: json_record(line, keys))


@dataclass(frozen=True)
class LogfmtFramer:
    """logfmt framer (``level=info msg="served" path=/x``): content from ``msg``/``message``,
    every other key a header field; quoted values are unescaped."""

    field_names: tuple[str, ...]
    content_keys: tuple[str, ...] = LOGFMT_CONTENT_KEYS

    @property
    def name(self) -> str:
        return "logfmt"

    @classmethod
    def from_sample(cls, sample: Iterable[str]) -> LogfmtFramer:
        return cls(field_names=_sample_field_names(sample, logfmt_record))

    def frame(self, lines: pa.Array) -> Framed:
        keys = self.content_keys
        return _frame_structured(lines, self.field_names, lambda line: logfmt_record(line, keys))


# Building blocks of the detection layouts. Kept strict on purpose (see PatternFramer).
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_ISO_TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_LEVEL = (
    r"\[?(?P<Level>(?i:trace|debug|info|notice|warn|warning|error|err|fatal|critical|crit"
    r"|severe|alert|emerg|panic))\]?"
)
_TAIL = r"(?:\s+(?P<Content>.*))?$"  # the message may be empty
_SYSLOG_TAG = r"(?P<Component>.*?)(?:\[(?P<PID>[^\]]*)\])?:"

_LAYOUTS: tuple[PatternFramer, ...] = (
    PatternFramer(
        "syslog-rfc5424",
        ("PRI", "Version", "Timestamp", "Host", "App", "ProcID", "MsgID", "StructuredData"),
        r"^<(?P<PRI>\d{1,3})>(?P<Version>\d{1,2}) (?P<Timestamp>\S+) (?P<Host>\S+)"
        r" (?P<App>\S+) (?P<ProcID>\S+) (?P<MsgID>\S+)"
        r' (?P<StructuredData>-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)'
        r"(?: (?P<Content>.*))?$",
    ),
    PatternFramer(
        "syslog-rfc3164",
        ("PRI", "Month", "Day", "Time", "Host", "Component", "PID"),
        rf"^(?:<(?P<PRI>\d{{1,3}})>)?(?P<Month>{_MONTH})\s+(?P<Day>\d{{1,2}})"
        rf"\s+(?P<Time>\d{{2}}:\d{{2}}:\d{{2}})\s+(?P<Host>\S+)\s+{_SYSLOG_TAG}{_TAIL}",
    ),
    PatternFramer(  # 2024-01-01 12:00:00,123 INFO [main] org.example.Server: started
        "iso-level-thread-logger",
        ("Timestamp", "Level", "Thread", "Component"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+{_LEVEL}\s+\[(?P<Thread>[^\]]*)\]"
        rf"\s+(?P<Component>[^\s:]+)(?::|\s+-){_TAIL}",
    ),
    PatternFramer(  # 2024-01-01 12:00:00.123 [main] INFO org.example.Server - started
        "iso-thread-level-logger",
        ("Timestamp", "Thread", "Level", "Component"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+\[(?P<Thread>[^\]]*)\]\s+{_LEVEL}"
        rf"\s+(?P<Component>[^\s:]+)(?::|\s+-){_TAIL}",
    ),
    PatternFramer(  # 2024-01-01 12:00:00,123 - app.db - WARNING - slow query
        "iso-logger-level",
        ("Timestamp", "Component", "Level"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+-\s+(?P<Component>\S+)\s+-\s+{_LEVEL}\s+-{_TAIL}",
    ),
    PatternFramer(  # 2024-01-01T12:00:00.123Z INFO http: listening on :8080
        "iso-level-logger",
        ("Timestamp", "Level", "Component"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+{_LEVEL}\s+(?P<Component>[^\s:\[\]]+):{_TAIL}",
    ),
    PatternFramer(  # log4j "%d - %p [%t:%C@%L] - %m": 2024-01-01 12:00:00,1 - INFO  [t:Q@7] - x
        "iso-dash-level-context",
        ("Timestamp", "Level", "Context"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+-\s+{_LEVEL}\s+\[(?P<Context>.*?)\]\s+-{_TAIL}",
    ),
    PatternFramer(  # Android logcat (threadtime): 01-02 09:30:15.042  1000  1234 I Tag: text
        "logcat",
        ("Date", "Time", "Pid", "Tid", "Level", "Component"),
        r"^(?P<Date>\d{2}-\d{2})\s+(?P<Time>\d{2}:\d{2}:\d{2}\.\d{3})\s+(?P<Pid>\d+)"
        rf"\s+(?P<Tid>\d+)\s+(?P<Level>[VDIWEFAS])\s+(?P<Component>.*?):{_TAIL}",
    ),
    PatternFramer(  # 2024-01-01T12:00:00Z WARN disk almost full
        "iso-level",
        ("Timestamp", "Level"),
        rf"^(?P<Timestamp>{_ISO_TS})\s+{_LEVEL}{_TAIL}",
    ),
    PatternFramer(  # rsyslog's default file format: 2024-01-01T12:00:00+00:00 host sshd[1]: x
        "syslog-iso",
        ("PRI", "Timestamp", "Host", "Component", "PID"),
        rf"^(?:<(?P<PRI>\d{{1,3}})>)?(?P<Timestamp>{_ISO_TS})\s+(?P<Host>\S+)\s+"
        rf"{_SYSLOG_TAG}{_TAIL}",
    ),
)
"""Regex layouts tried by detection, most specific first: on a tie the earlier one wins."""


def detect_framer(sample: Sequence[str]) -> Framer:
    """Guess the framer from the first lines of a log (about :data:`DETECTION_SAMPLE_LINES`).

    Every candidate (JSON, logfmt, then :data:`_LAYOUTS` in order) frames the non-blank
    sample lines; the one matching the largest share wins, the earlier one on a tie, and only
    if that share is at least :data:`DETECTION_MIN_FRACTION`. Otherwise the whole line is the
    content (:class:`PlainFramer`). The result depends only on the sample, never on order of
    iteration over sets or on time, so the same file always frames the same way.
    """
    lines = [line.rstrip("\r\n") for line in sample if line.strip()]
    if not lines:
        return PlainFramer()
    batch = pa.array(lines, pa.string())
    candidates: list[Framer] = [
        JsonFramer.from_sample(lines),
        LogfmtFramer.from_sample(lines),
        *_LAYOUTS,
    ]
    best: Framer = PlainFramer()
    best_count = 0
    for candidate in candidates:
        count = pc.sum(candidate.frame(batch).matched).as_py() or 0
        if count > best_count:
            best, best_count = candidate, count
    if best_count < DETECTION_MIN_FRACTION * len(lines):
        return PlainFramer()
    return best


def resolve_framer(
    log_format: str | None, preset_name: str | None, sample: Sequence[str]
) -> Framer:
    """The framer the user asked for: an explicit format string, else a preset, else one
    detected from ``sample``. Giving both a format and a preset is a usage error, since
    silently preferring one would frame the file differently from what the user expects."""
    if log_format is not None and preset_name is not None:
        raise UsageError("give either a log format (--log-format) or a preset (--preset), not both")
    if log_format is not None:
        return compile_format(log_format)
    if preset_name is not None:
        return preset(preset_name)
    return detect_framer(sample)
