"""One exception hierarchy for logpipe.

Every error a user can cause derives from :class:`LogpipeError`, so the CLI can turn any of
them into a clear message and exit code 1 (2 for usage errors) instead of a traceback::

    LogpipeError
    ├── UsageError            bad flags, unknown preset, malformed format string (exit code 2)
    │   └── FormatSpecError   a log format string that cannot be compiled
    ├── InputError            an input that cannot be read (missing file, truncated gzip/zstd)
    ├── StateError            a saved parser state that is corrupt or from another version
    ├── StoreError            log store: bad tenant, labels or offsets; a damaged segment
    ├── PipelineError         the streaming pipeline stopped: a source or stage failed
    ├── EvaluationError       ground truth and parsed results that cannot be compared
    ├── ModelError            a model that cannot be loaded (directory, weights package, cache)
    ├── AlertDeliveryError    an alert sink gave up on a delivery (counted; never stops a stream)
    └── LogQLError            a query that cannot be run; names its line and column
        ├── LogQLParseError   not LogQL at all (Loki's "parse error at line L, col C: ...")
        ├── LogQLValidationError  LogQL, but not a valid query (no matcher, unwrap missing)
        └── QueryLimitError   a query over a limit (range, series, entries, points, time)

Messages name the file, line, byte offset or column, and say what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AlertDeliveryError",
    "EvaluationError",
    "FormatSpecError",
    "InputError",
    "LogQLError",
    "LogQLParseError",
    "LogQLValidationError",
    "LogpipeError",
    "ModelError",
    "PipelineError",
    "QueryLimitError",
    "StateError",
    "StoreError",
    "UsageError",
]


class LogpipeError(Exception):
    """Base of every error logpipe raises on purpose."""

    exit_code = 1


class UsageError(LogpipeError):
    """The user asked for something impossible (bad flag value, unknown preset)."""

    exit_code = 2


class FormatSpecError(UsageError):
    """A log format string such as ``<Date> <Time> <Content>`` that cannot be compiled."""


class InputError(LogpipeError):
    """An input file or stream that cannot be read to the end.

    ``path`` and ``offset`` (bytes into the decompressed stream, when known) say where.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if offset is not None:
                where += f" at byte {offset}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


class StateError(LogpipeError):
    """A saved parser state that cannot be restored."""


class StoreError(LogpipeError):
    """A log store operation that cannot proceed (``logpipe/store/``).

    The message names what it is about: ``tenant 'acme': stream {app="x"}: segment
    streams/ab/....lpz: checksum mismatch in stream 'ts'``. ``tenant``, ``stream`` (the
    label set's text form) and ``path`` (relative to the store root) carry the same facts
    for programs, ``None`` when they do not apply.
    """

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        stream: str | None = None,
        path: str | None = None,
    ) -> None:
        where = []
        if tenant is not None:
            where.append(f"tenant {tenant!r}")
        if stream is not None:
            where.append(f"stream {stream}")
        if path is not None:
            where.append(f"segment {path}" if path.endswith(".lpz") else path)
        super().__init__(": ".join([*where, message]))
        self.tenant = tenant
        self.stream = stream
        self.path = path


class PipelineError(LogpipeError):
    """The streaming pipeline (``logpipe/pipeline/``) could not go on: a source failed in
    a way it cannot retry (bad credentials, an unknown topic), or it did not drain in time.
    Nothing acknowledged is lost; what was not acknowledged is read again on restart."""


class EvaluationError(LogpipeError):
    """Parsed output and ground truth that do not line up (different line counts, columns)."""


class ModelError(LogpipeError):
    """A model that cannot be used: missing or unreadable files, a ``config.json`` naming a
    detector this install does not know, weights that do not load, a weights package that is
    not installed, a damaged cache or checkpoint. The message names the directory (or
    package) and what to do; ``path`` carries the directory for programs."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path


class AlertDeliveryError(LogpipeError):
    """An alert sink gave up: ``reason`` is the metric label (``connection``, ``timeout``,
    ``http_5xx``, ``http_4xx``, ``kafka``, ``cancelled``), ``attempts`` how many tries it made.

    Raised by a sink's ``send`` to its dispatcher, which counts it and goes on: a failing
    alert receiver never stops the pipeline or the archive."""

    def __init__(self, sink: str, reason: str, detail: str, *, attempts: int = 1) -> None:
        super().__init__(f"alert sink {sink}: {reason} after {attempts} attempt(s): {detail}")
        self.sink = sink
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


class LogQLError(LogpipeError):
    """A query that cannot be run. ``line`` and ``column`` are 1-based, as Loki reports them.

    ``str(err)`` reads like Loki's: ``parse error at line 1, col 22: syntax error: unexpected
    IDENTIFIER, expecting STRING``; ``detail`` is the part after the position.
    """

    exit_code = 2

    def __init__(self, detail: str, *, query: str = "", pos: int = -1) -> None:
        self.detail = detail
        self.query = query
        self.pos = pos
        if pos >= 0:
            before = query[:pos]
            self.line = before.count("\n") + 1
            self.column = pos - (before.rfind("\n") + 1) + 1
            super().__init__(f"parse error at line {self.line}, col {self.column}: {detail}")
        else:
            self.line = self.column = 0
            super().__init__(detail)


class LogQLParseError(LogQLError):
    """Text that is not LogQL (a syntax error, a bad string literal, a bad duration)."""


class LogQLValidationError(LogQLError):
    """Well-formed LogQL that Loki would still reject (no non-empty matcher, bad unwrap)."""


class QueryLimitError(LogQLError):
    """A query over one of the engine's limits; served as HTTP 400, like Loki's limits."""
