import json

import pytest

from logpipe.archive.codec import encode_segment, split_lines
from logpipe.archive.segment import decode_segment
from logpipe.parsing import TemplateMiner


def _round_trip(data: bytes) -> dict[str, object]:
    lines, ends = split_lines(data)
    seg = encode_segment(lines, ends, TemplateMiner())
    assert decode_segment(seg.header, seg.streams) == data
    return seg.header


def test_edge_inputs_round_trip() -> None:
    for data in [b"", b"\n", b"\n\n", b"a", b"a\r\nb\nc", b"x\x00y\n", b"\xff\n", b"  lead\n"]:
        _round_trip(data)


def test_lines_are_stored_as_templates_and_typed_columns() -> None:
    data = b"".join(f"req {i} took {i * 3} ms from 10.0.0.{i % 9}\n".encode() for i in range(200))
    lines, ends = split_lines(data)
    seg = encode_segment(lines, ends, TemplateMiner())
    assert seg.header["verbatim"] == 0
    templates = json.loads(seg.streams["dict"])["templates"]
    assert len(templates) == 1
    assert templates[0]["types"][:2] == ["int:d1:0", "int:d1:0"]  # deltas 1 and 3: one byte
    assert decode_segment(seg.header, seg.streams) == data


def test_templates_keep_the_lines_own_whitespace() -> None:
    data = (
        b"session for user   bob\topened by root\r\n"
        b"session for user eve opened by root\n"
        b"session for user   amy\topened by root\r\n"
    )
    lines, ends = split_lines(data)
    seg = encode_segment(lines, ends, TemplateMiner())
    assert seg.header["verbatim"] == 0
    pieces = [t["pieces"] for t in json.loads(seg.streams["dict"])["templates"]]
    assert ["session for user   ", "\topened by root\r"] in pieces
    assert decode_segment(seg.header, seg.streams) == data


def test_invalid_utf8_and_misfits_are_verbatim() -> None:
    header = _round_trip(b"ok 1\nok 2\n\xff\xfe broken\n")
    assert header["verbatim"] == 1


def test_lines_a_group_pattern_misses_are_split_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    from logpipe.archive import codec

    monkeypatch.setattr(codec, "_match_group", lambda *args: None)
    data = b"".join(f"job {i} finished in {i % 7} s\n".encode() for i in range(100))
    header = _round_trip(data)
    assert header["verbatim"] == 0 and header["templates"] == 1
