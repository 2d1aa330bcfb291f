"""Per-line parsers for structured log lines: JSON objects and logfmt.

Package-private helpers of :mod:`logpipe.formats` (import framers from there). They are kept
apart because they are the only framing code that runs per line in Python: a JSON document or
a logfmt line with quoted, escaped values cannot be split by one anchored regular expression,
so the Arrow/RE2 fast path that :class:`logpipe.formats.LogFormat` uses does not apply.

Both parsers return ``None`` for a line that is not of their kind instead of raising, because
a framer turns such lines into data (``matched`` False, content = the whole line) rather than
stopping the stream.

Field values are strings, as every header field is: JSON strings as they are, other JSON
scalars and nested values JSON-encoded (compactly, numbers with their original digits), so a
value never changes meaning on the way through (``1.10`` stays ``1.10``, not ``1.1``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

__all__ = [
    "JSON_CONTENT_KEYS",
    "LOGFMT_CONTENT_KEYS",
    "StructuredRecord",
    "json_record",
    "logfmt_record",
]

JSON_CONTENT_KEYS: tuple[str, ...] = ("message", "msg", "log", "text", "content", "event")
"""Keys that hold the message body of a JSON line, by priority: the first present one wins.

These are the conventions of the common JSON loggers (Logstash/ECS ``message``, Bunyan and
pino ``msg``, Docker ``log``, ...)."""

LOGFMT_CONTENT_KEYS: tuple[str, ...] = ("msg", "message")
"""Keys that hold the message body of a logfmt line, by priority."""

StructuredRecord = tuple[str | None, str, dict[str, str | None]]
"""``(content key or None, content, other fields)`` of one parsed line."""


class _RawNumber(str):
    """A JSON number kept as its source text.

    ``json.loads`` would turn ``1.10`` into the float ``1.1`` and ``1e3`` into ``1000.0``;
    keeping the digits makes the stringified field equal to what the line said.
    """

    __slots__ = ()


def _raw_constant(text: str) -> _RawNumber:
    # NaN / Infinity / -Infinity: not JSON, but Python's json accepts them; keep the text.
    return _RawNumber(text)


def _encode(value: object) -> str | None:
    """Stringify one JSON value: strings as is, null as None, the rest compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # a _RawNumber becomes its digits, a string stays itself
    return _encode_nested(value)


def _encode_nested(value: object) -> str:
    if isinstance(value, _RawNumber):
        return str(value)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(k, ensure_ascii=False)}:{_encode_nested(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode_nested(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _split_content(
    pairs: dict[str, object], content_keys: Iterable[str], line: str
) -> StructuredRecord:
    """Pick the content value and stringify the other keys.

    A line without any content key keeps the whole line as its content, so the template
    miner still sees the event (a request log of pure key/value pairs, say).
    """
    for key in content_keys:
        if key in pairs:
            content = _encode(pairs[key])
            fields = {k: _encode(v) for k, v in pairs.items() if k != key}
            return key, "" if content is None else content, fields
    return None, line, {k: _encode(v) for k, v in pairs.items()}


def json_record(
    line: str, content_keys: Iterable[str] = JSON_CONTENT_KEYS
) -> StructuredRecord | None:
    """Parse one line holding a JSON object; ``None`` if it is anything else."""
    text = line.strip()
    if not text.startswith("{"):  # cheap rejection before the parser runs
        return None
    try:
        value = json.loads(
            text, parse_int=_RawNumber, parse_float=_RawNumber, parse_constant=_raw_constant
        )
    except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
        return None
    if not isinstance(value, dict):
        return None
    return _split_content(value, content_keys, line)


# One logfmt pair: a key, "=", then a quoted value with backslash escapes or a bare value.
# The lookahead makes a pair end at whitespace or the end, so `a="x"y` is not logfmt.
_LOGFMT_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
_SPACES = re.compile(r"\s*")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "/": "/"}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 5:  # uXXXX
        return chr(int(code[1:], 16))
    # An unknown escape keeps its backslash: better a visible oddity than a lost character.
    return _SIMPLE_ESCAPES.get(code, match.group(0))


def _logfmt_pairs(line: str) -> dict[str, object] | None:
    pos = _SPACES.match(line).end()  # type: ignore[union-attr]  # \s* always matches
    end = len(line)
    pairs: dict[str, object] = {}
    while pos < end:
        match = _LOGFMT_PAIR.match(line, pos)
        if match is None:
            return None
        key, raw = match.groups()
        # Later duplicates win, as they do in JSON objects.
        pairs[key] = _ESCAPE.sub(_unescape, raw[1:-1]) if raw.startswith('"') else raw
        pos = _SPACES.match(line, match.end()).end()  # type: ignore[union-attr]
    return pairs or None


def logfmt_record(
    line: str, content_keys: Iterable[str] = LOGFMT_CONTENT_KEYS
) -> StructuredRecord | None:
    """Parse one logfmt line (``key=value key2="quoted \\"value\\""``); ``None`` if not one.

    Every token must be a ``key=value`` pair. logfmt also allows bare keys, but accepting them
    would make every line of words "logfmt", which would defeat format detection.
    """
    pairs = _logfmt_pairs(line.strip())
    if pairs is None:
        return None
    return _split_content(pairs, content_keys, line)
