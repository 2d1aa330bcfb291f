"""Decoding ``POST /loki/api/v1/push`` bodies into streams of (timestamp, line).

Two encodings, as Loki accepts them:

* **JSON** (``Content-Type: application/json``)::

      {"streams": [{"stream": {"app": "api"}, "values": [["<unix ns>", "<line>"], ...]}]}

  A value may carry a third element (structured metadata), which is ignored.
* **protobuf + snappy** (``application/x-protobuf``, and any other or no content type, as in
  Loki): Loki's ``logproto.PushRequest`` compressed in snappy's *block* format::

      PushRequest   { repeated Stream streams = 1; }
      Stream        { string labels = 1; repeated Entry entries = 2; uint64 hash = 3; }
      Entry         { Timestamp timestamp = 1; string line = 2;
                      repeated LabelPair structuredMetadata = 3; }
      Timestamp     { int64 seconds = 1; int32 nanos = 2; }

  where ``labels`` is the label set's text form, ``{app="api"}``.

A JSON body may also come gzip- or deflate-compressed (``Content-Encoding``). Every size is
capped before decompressing, so a small body cannot expand into gigabytes. Every problem is a
:class:`PushError` naming the stream and entry (HTTP 400).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from logpipe.labels import LABEL_NAME, LabelError, format_labels, parse_labels
from logpipe.server.protowire import FIXED64, LENGTH_DELIMITED, VARINT, WireError, fields
from logpipe.server.protowire import signed64 as _signed64

__all__ = [
    "DEFAULT_MAX_PUSH_BYTES",
    "PushError",
    "PushStream",
    "decode_json",
    "decode_protobuf",
    "decode_push",
    "to_batch",
]

#: Largest push body we decode (after decompression). Loki's default gRPC limit is 100 MB;
#: Promtail batches are 1 MiB by default.
DEFAULT_MAX_PUSH_BYTES = 64 << 20
_NS_PER_S = 1_000_000_000


class PushError(ValueError):
    """A push body that cannot be stored; the message says which stream and entry."""


@dataclass
class PushStream:
    """One stream of a push: its labels and entries, in the order they came."""

    labels: dict[str, str]
    ts_ns: list[int] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)


def _check_labels(labels: dict[str, str], where: str) -> dict[str, str]:
    if not labels:
        raise PushError(f"{where}: at least one label pair is required per stream")
    for name in labels:
        if not LABEL_NAME.fullmatch(name):
            raise PushError(f"{where}: invalid label name {name!r}")
    return labels


# --------------------------------------------------------------------------- JSON


def _json_ts(value: object, where: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63:
        return value
    raise PushError(f"{where}: timestamp must be a string of unix nanoseconds, got {value!r}")


def _json_stream(index: int, raw: object) -> PushStream:
    where = f"stream {index}"
    if not isinstance(raw, dict):
        raise PushError(f"{where}: must be an object with 'stream' and 'values'")
    labels = raw.get("stream")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise PushError(f'{where}: "stream" must be an object of string label values')
    stream = PushStream(_check_labels(dict(labels), where))
    values = raw.get("values")
    if not isinstance(values, list):
        raise PushError(f'{where}: "values" must be a list of ["<unix ns>", "<line>"] pairs')
    for j, value in enumerate(values):
        at = f"{where} value {j}"
        if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[1], str):
            raise PushError(f'{at}: must be ["<unix ns>", "<line>"] (plus optional metadata)')
        stream.ts_ns.append(_json_ts(value[0], at))
        try:
            stream.lines.append(value[1].encode("utf-8"))
        except UnicodeEncodeError:
            raise PushError(f"{at}: line is not valid Unicode (a lone surrogate)") from None
    return stream


def decode_json(body: bytes) -> list[PushStream]:
    """The streams of a JSON push body."""
    try:
        doc: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PushError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise PushError('body must be a JSON object with a "streams" list')
    return [_json_stream(i, s) for i, s in enumerate(doc["streams"])]


# --------------------------------------------------------------------------- protobuf


def _snappy_length(body: bytes) -> int:
    """The uncompressed length a snappy block declares (its leading varint)."""
    result = shift = 0
    for i, byte in enumerate(body[:10]):
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
        if i == 9:
            break
    raise PushError("body is not snappy-compressed protobuf: bad length header")


def _unsnappy(body: bytes, max_bytes: int) -> bytes:
    import cramjam  # noqa: PLC0415 - only pushes need the snappy codec

    declared = _snappy_length(body)
    if declared > max_bytes:
        raise PushError(f"body decompresses to {declared} bytes; the limit is {max_bytes}")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise PushError(f"body is not snappy block-compressed protobuf: {exc}") from None


def _timestamp(data: memoryview, where: str) -> int:
    seconds = nanos = 0
    for number, wire, value, _ in fields(data):
        if number == 1 and wire == VARINT:
            seconds = _signed64(int(value))
        elif number == 2 and wire == VARINT:
            nanos = _signed64(int(value))
    if not 0 <= nanos < _NS_PER_S:
        raise PushError(f"{where}: timestamp nanos {nanos} outside 0..999999999")
    return seconds * _NS_PER_S + nanos


def _entry(data: memoryview, where: str) -> tuple[int, bytes]:
    ts: int | None = None
    line = b""
    for number, wire, value, _ in fields(data):
        if number == 1 and wire == LENGTH_DELIMITED:
            assert isinstance(value, memoryview)
            ts = _timestamp(value, where)
        elif number == 2 and wire == LENGTH_DELIMITED:
            assert isinstance(value, memoryview)
            line = bytes(value)
        # field 3 (structured metadata) and unknown fields: skipped
    if ts is None:
        raise PushError(f"{where}: entry has no timestamp")
    return ts, line


def _proto_stream(index: int, data: memoryview) -> PushStream:
    where = f"stream {index}"
    label_text: str | None = None
    entries: list[memoryview] = []
    for number, wire, value, _ in fields(data):
        if number == 1 and wire == LENGTH_DELIMITED:
            assert isinstance(value, memoryview)
            try:
                label_text = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise PushError(f"{where}: labels are not valid UTF-8") from None
        elif number == 2 and wire == LENGTH_DELIMITED:
            assert isinstance(value, memoryview)
            entries.append(value)
        elif number == 3 and wire not in (VARINT, FIXED64):
            raise PushError(f"{where}: field hash has the wrong wire type")
    if label_text is None:
        raise PushError(f"{where}: no labels")
    try:
        labels = parse_labels(label_text)
    except LabelError as exc:
        raise PushError(
            f"{where}: invalid labels {label_text!r}: {exc} at character {exc.offset}"
        ) from None
    stream = PushStream(_check_labels(labels, where))
    for j, entry in enumerate(entries):
        ts, line = _entry(entry, f"{where} entry {j}")
        stream.ts_ns.append(ts)
        stream.lines.append(line)
    return stream


def decode_protobuf(body: bytes, max_bytes: int = DEFAULT_MAX_PUSH_BYTES) -> list[PushStream]:
    """The streams of a snappy-compressed ``PushRequest``."""
    data = _unsnappy(body, max_bytes)
    streams: list[PushStream] = []
    try:
        for number, wire, value, _ in fields(data):
            if number == 1 and wire == LENGTH_DELIMITED:
                assert isinstance(value, memoryview)
                streams.append(_proto_stream(len(streams), value))
    except WireError as exc:
        raise PushError(f"body is not a valid protobuf PushRequest: {exc}") from None
    return streams


# --------------------------------------------------------------------------- dispatch


def _inflate(body: bytes, wbits: int, max_bytes: int, name: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise PushError(f"body is not valid {name}: {exc}") from None
    if len(out) > max_bytes:
        raise PushError(f"body decompresses to more than {max_bytes} bytes")
    if not inflater.eof:
        raise PushError(f"body is truncated {name}")
    return out


def decode_push(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_PUSH_BYTES,
) -> list[PushStream]:
    """The streams of a push body, by its content type and encoding (Loki's rules)."""
    if len(body) > max_bytes:
        raise PushError(f"body is {len(body)} bytes; the limit is {max_bytes}")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, "gzip")
    elif encoding == "deflate":
        body = _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate")
    elif encoding not in ("", "identity", "snappy"):
        raise PushError(f"unsupported Content-Encoding {content_encoding!r}")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/json":
        return decode_json(body)
    return decode_protobuf(body, max_bytes)


def to_batch(streams: list[PushStream]) -> pa.Table:
    """The streams as one LogBatch-shaped table (``ts``, ``labels`` text, ``line``), so the
    store ingests a whole push atomically."""
    ts: list[int] = []
    labels: list[str] = []
    lines: list[bytes] = []
    for stream in streams:
        text = format_labels(stream.labels)
        ts += stream.ts_ns
        labels += [text] * len(stream.lines)
        lines += stream.lines
    return pa.table(
        {
            "ts": pa.array(ts, pa.int64()),
            "labels": pa.array(labels, pa.string()),
            "line": pa.array(lines, pa.binary()),
        }
    )
