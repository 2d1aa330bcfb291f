"""Helpers for tests that talk to a real API server over loopback sockets.

``http`` is a tiny ``urllib`` wrapper that returns (status, headers, body) for every status
instead of raising; the protobuf helpers build Loki ``PushRequest`` bytes by hand, field by
field, so the server's decoder is checked against the wire format, not against itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import cramjam

from logpipe.logql.results import (
    Matrix,
    QueryResult,
    Sample,
    Scalar,
    Series,
    Stream,
    Streams,
    Vector,
)

Reply = tuple[int, dict[str, str], bytes]


def http(
    url: str,
    *,
    method: str = "GET",
    params: Mapping[str, str | Sequence[str]] | None = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One request; ``params`` values may be lists (repeated parameters such as match[])."""
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, **kwargs: Any) -> Any:
    status, _, body = http(url, **kwargs)
    assert status == 200, body
    return json.loads(body)


# ------------------------------------------------------------------ protobuf by hand


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(number, 2) + varint(len(payload)) + payload


def entry(ts_ns: int, line: str, metadata: Mapping[str, str] | None = None) -> bytes:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    stamp = tag(1, 0) + varint(seconds) + tag(2, 0) + varint(nanos)
    out = ld(1, stamp) + ld(2, line.encode())
    for name, value in (metadata or {}).items():  # structuredMetadata: LabelPairAdapter
        out += ld(3, ld(1, name.encode()) + ld(2, value.encode()))
    return out


def push_request(
    streams: Sequence[tuple[str, Sequence[tuple[int, str]]]], *, extras: bool = False
) -> bytes:
    """A snappy-compressed PushRequest; ``extras`` adds what a decoder must skip (a stream
    hash, structured metadata, an unknown fixed32 and fixed64 field)."""
    body = b""
    for labels, entries in streams:
        stream = ld(1, labels.encode())
        for ts, line in entries:
            stream += ld(2, entry(ts, line, {"trace_id": "abc"} if extras else None))
        if extras:
            stream += tag(3, 0) + varint(12345678901234)  # hash
            stream += tag(9, 5) + b"\x01\x02\x03\x04" + tag(10, 1) + b"\x00" * 8
        body += ld(1, stream)
    return bytes(cramjam.snappy.compress_raw(body))


# ------------------------------------------------------------------ a fake engine


class FakeEngine:
    """The Engine API with canned answers; records each call's keyword arguments.

    A query starting with ``{`` is a log query (streams); anything else is a metric query
    (a matrix for ranges, a vector for instants; ``scalar`` gives a scalar).
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def query_range(self, query: str, **kwargs: Any) -> QueryResult:
        self.calls.append({"kind": "range", "query": query, **kwargs})
        if query.startswith("{"):
            return Streams([Stream({"app": "a"}, [(kwargs["start_ns"], "first")])])
        return Matrix([Series({"app": "a"}, [(kwargs["start_ns"], 1.0), (kwargs["end_ns"], 2.5)])])

    def query_instant(self, query: str, **kwargs: Any) -> QueryResult:
        self.calls.append({"kind": "instant", "query": query, **kwargs})
        if query.startswith("{"):
            return Streams([Stream({"app": "a"}, [(kwargs["time_ns"], "line")])])
        if query == "scalar":
            return Scalar(kwargs["time_ns"], 2.0)
        return Vector([Sample({"app": "a"}, kwargs["time_ns"], 0.5)])
