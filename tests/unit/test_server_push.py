"""Push bodies: JSON and protobuf+snappy decode to the same streams; bad bodies say why."""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.server.protowire import WireError, fields, signed64
from logpipe.server.push import PushError, decode_push, to_batch
from tests.serverutil import ld, push_request, tag, varint

PB = "application/x-protobuf"
JSON = "application/json"


def test_json_push_decodes_streams_in_order() -> None:
    body = json.dumps(
        {
            "streams": [
                {
                    "stream": {"app": "a", "env": "p"},
                    "values": [["2", "x"], ["1", "y", {"k": "v"}]],
                },
                {"stream": {"app": "b"}, "values": []},
            ]
        }
    ).encode()
    streams = decode_push(body, "application/json; charset=utf-8")
    assert [(s.labels, s.ts_ns, s.lines) for s in streams] == [
        ({"app": "a", "env": "p"}, [2, 1], [b"x", b"y"]),
        ({"app": "b"}, [], []),
    ]
    table = to_batch(streams)
    assert table.column("labels").to_pylist() == ['{app="a", env="p"}'] * 2
    assert table.column("ts").to_pylist() == [2, 1]


def test_protobuf_push_matches_json_push_and_skips_extras() -> None:
    entries = [(1_700_000_000_123_456_789, "hello ünïcode"), (5, "second")]
    for extras in (False, True):
        streams = decode_push(push_request([('{app="a", x="1"}', entries)], extras=extras), PB)
        assert [(s.labels, s.ts_ns, s.lines) for s in streams] == [
            ({"app": "a", "x": "1"}, [e[0] for e in entries], [e[1].encode() for e in entries])
        ]
    # no content type at all is protobuf too (Loki's rule)
    assert len(decode_push(push_request([('{a="b"}', [(1, "l")])]), None)) == 1


def test_compressed_json_bodies() -> None:
    body = json.dumps({"streams": [{"stream": {"a": "b"}, "values": [["1", "l"]]}]}).encode()
    assert decode_push(gzip.compress(body), JSON, "gzip")[0].lines == [b"l"]
    assert decode_push(zlib.compress(body), JSON, "deflate")[0].lines == [b"l"]
    with pytest.raises(PushError, match="Content-Encoding"):
        decode_push(body, JSON, "br")
    with pytest.raises(PushError, match="more than 100 bytes"):
        decode_push(gzip.compress(b" " * 10_000), JSON, "gzip", max_bytes=100)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", '"streams" list'),
        (b'{"streams": [1]}', "stream 0"),
        (b'{"streams": [{"stream": {}, "values": []}]}', "at least one label"),
        (b'{"streams": [{"stream": {"1a": "x"}, "values": []}]}', "invalid label name"),
        (b'{"streams": [{"stream": {"a": 1}, "values": []}]}', "string label values"),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["x", "l"]]}]}', "stream 0 value 0"),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["1"]]}]}', "value 0"),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["1", 5]]}]}', "value 0"),
        (
            b'{"streams": [{"stream": {"a": "b"}, "values": [["99999999999999999999", "l"]]}]}',
            "timestamp",
        ),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["1", "\\ud800"]]}]}', "surrogate"),
    ],
)
def test_bad_json_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(PushError, match=message):
        decode_push(body, JSON)


def _snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not snappy at all", "snappy"),
        (_snappy(b"\x0a\x05abc"), "past the end"),  # stream claims 5 bytes, has 3
        (_snappy(ld(1, ld(2, ld(2, b"line")))), "no labels"),
        (_snappy(ld(1, ld(1, b"{a=}"))), "invalid labels"),
        (_snappy(ld(1, ld(1, b"{}"))), "at least one label"),
        (_snappy(ld(1, ld(1, b'{a="b"}') + ld(2, ld(2, b"no ts")))), "no timestamp"),
        (_snappy(tag(1, 3)), "wire type 3"),
        (_snappy(b"\xff" * 11), "varint"),
        (varint(1 << 40) + b"\x00", "limit"),  # declares a terabyte
    ],
)
def test_bad_protobuf_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(PushError, match=message):
        decode_push(body, PB)


def test_wire_reader_basics() -> None:
    data = tag(1, 0) + varint(300) + tag(2, 5) + b"\x01\x00\x00\x00" + ld(3, b"xy")
    got = [(n, w, v if isinstance(v, int) else bytes(v)) for n, w, v, _ in fields(data)]
    assert got == [(1, 0, 300), (2, 5, 1), (3, 2, b"xy")]
    assert signed64(varint(-5)[0] and (1 << 64) - 5) == -5
    with pytest.raises(WireError, match="field number 0"):
        list(fields(b"\x00\x01"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(raw: bytes) -> None:
    for body in (raw, _snappy(raw)):
        with contextlib.suppress(PushError):  # refusing is fine; any other exception is not
            decode_push(body, PB)
