"""Query results and their Loki JSON form (what ``/loki/api/v1/query*`` returns).

Why the JSON lives here, beside the types: ``logpipe query --output json`` must print exactly
the API's body, so both the server and the CLI call :func:`to_loki_json`.

Loki's encodings, followed exactly:

* ``streams``: ``{"stream": {labels}, "values": [["<unix ns as a string>", "<line>"], ...]}``;
* ``matrix``: ``{"metric": {labels}, "values": [[<unix seconds>, "<value>"], ...]}``;
* ``vector``: ``{"metric": {labels}, "value": [<unix seconds>, "<value>"]}``;
* ``scalar``: ``[<unix seconds>, "<value>"]``;

where seconds are a JSON number with millisecond precision (``1700000000.123``, integral
seconds without a point) and values are Go's ``strconv.FormatFloat(v, 'f', -1, 64)``
(``"0.016666666666666666"``, ``"1"``, ``"NaN"``, ``"+Inf"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "Matrix",
    "QueryResult",
    "Sample",
    "Scalar",
    "Series",
    "Stream",
    "Streams",
    "Vector",
    "format_value",
    "to_loki_json",
]


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[tuple[int, str]]  # (unix ns, line)


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[int, float]]  # (unix ns, value)


@dataclass
class Sample:
    labels: dict[str, str]
    ts_ns: int
    value: float


@dataclass
class Streams:
    streams: list[Stream] = field(default_factory=list)
    result_type = "streams"


@dataclass
class Matrix:
    series: list[Series] = field(default_factory=list)
    result_type = "matrix"


@dataclass
class Vector:
    samples: list[Sample] = field(default_factory=list)
    result_type = "vector"


@dataclass
class Scalar:
    ts_ns: int
    value: float
    result_type = "scalar"


QueryResult = Streams | Matrix | Vector | Scalar


def format_value(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _seconds(ts_ns: int) -> float | int:
    """Unix seconds with millisecond precision, as Prometheus/Loki JSON writes them."""
    ms = ts_ns // 1_000_000
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def to_loki_json(result: QueryResult, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of a successful Loki query response."""
    payload: Any
    if isinstance(result, Streams):
        payload = [
            {"stream": dict(s.labels), "values": [[str(ts), line] for ts, line in s.entries]}
            for s in result.streams
        ]
    elif isinstance(result, Matrix):
        payload = [
            {"metric": dict(s.labels),
             "values": [[_seconds(ts), format_value(v)] for ts, v in s.points]}
            for s in result.series
        ]  # fmt: skip
    elif isinstance(result, Vector):
        payload = [
            {"metric": dict(s.labels), "value": [_seconds(s.ts_ns), format_value(s.value)]}
            for s in result.samples
        ]
    else:
        payload = [_seconds(result.ts_ns), format_value(result.value)]
    return {
        "status": "success",
        "data": {"resultType": result.result_type, "result": payload, "stats": stats or {}},
    }
