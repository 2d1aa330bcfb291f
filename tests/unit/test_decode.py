"""UTF-8 decoding of raw lines into the content column (logpipe.io.decode)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from logpipe.io.decode import decode_lines


def test_valid_utf8_takes_the_fast_path() -> None:
    out = decode_lines(pa.array([b"caf\xc3\xa9", b"", b"nul \x00 and \x07 bell"], pa.binary()))
    assert out.content.to_pylist() == ["café", "", "nul \x00 and \x07 bell"]
    assert out.invalid_utf8 is None


def test_invalid_lines_are_replaced_and_flagged() -> None:
    out = decode_lines(pa.array([b"ok", b"bad \xff\xfe", b"\xed\xa0\x80 surrogate"], pa.binary()))
    assert out.content.to_pylist() == ["ok", "bad \ufffd\ufffd", "\ufffd\ufffd\ufffd surrogate"]
    assert out.invalid_utf8 is not None
    assert out.invalid_utf8.to_pylist() == [False, True, True]


def test_exactly_one_trailing_cr_is_stripped() -> None:
    out = decode_lines(pa.array([b"crlf\r", b"two\r\r", b"mid\rdle", b"\r", b"bad\xff\r"]))
    assert out.content.to_pylist() == ["crlf", "two\r", "mid\rdle", "", "bad\ufffd"]


@given(st.lists(st.binary(max_size=12), max_size=20))
def test_matches_python_decoding(lines: list[bytes]) -> None:
    out = decode_lines(pa.array(lines, pa.binary()))
    want = []
    for raw in lines:
        text = raw.decode("utf-8", errors="replace")
        want.append(text[:-1] if text.endswith("\r") else text)
    assert out.content.to_pylist() == want
    flags = out.invalid_utf8.to_pylist() if out.invalid_utf8 is not None else [False] * len(lines)
    assert flags == [_invalid(raw) for raw in lines]


def _invalid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
