"""The segment codec is lossless for any bytes (the archive's core promise)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.archive.codec import encode_segment, split_lines
from logpipe.archive.segment import decode_segment, grep_segment
from logpipe.parsing import TemplateMiner

# Log-like material plus the awkward bits: CR, tabs, runs of spaces, NUL and control bytes,
# invalid UTF-8, text that looks like a placeholder, long digit runs.
_PIECES = st.sampled_from(
    [b"INFO", b"ERROR", b"user", b"=", b"blk_-123", b"10.0.0.1:80", b" ", b"  ", b"\t", b"\r",
     b"<*>", b"\x00", b"\x1b[31m", b"\xff\xfe", b"\xc3\xa9", b"007", b"0", b"42", b"-7",
     b"2024-01-01", b"12:30:01", b"[x]", b"(", b")", b",", b"\n", b"\r\n", b"/var/log/a"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=60), st.lists(st.binary(max_size=40), max_size=5))
@settings(max_examples=1000, deadline=None)
def test_any_bytes_round_trip(pieces: list[bytes], noise: list[bytes]) -> None:
    data = b"".join(pieces) + b"\n".join(noise)
    lines, ends_with_newline = split_lines(data)
    segment = encode_segment(lines, ends_with_newline, TemplateMiner())
    assert decode_segment(segment.header, segment.streams) == data


@given(st.lists(st.integers(0, 10**18 - 1), min_size=1, max_size=50), st.integers(1, 3))
@settings(max_examples=200, deadline=None)
def test_numbers_round_trip_through_integer_columns(numbers: list[int], width: int) -> None:
    data = b"".join(f"took {n} ms id={n:0{width}d}\n".encode() for n in numbers)
    lines, ends_with_newline = split_lines(data)
    segment = encode_segment(lines, ends_with_newline, TemplateMiner())
    assert decode_segment(segment.header, segment.streams) == data


@given(
    st.lists(_PIECES, max_size=60),
    st.sampled_from(["user", "blk_-123", "<*>", "4", "00", " ", "=", "10.0", "\r", "é"]),
)
@settings(max_examples=300, deadline=None)
def test_grep_finds_exactly_the_lines_that_contain_the_pattern(
    pieces: list[bytes], pattern: str
) -> None:
    data = b"".join(pieces)
    lines, ends_with_newline = split_lines(data)
    segment = encode_segment(lines, ends_with_newline, TemplateMiner())
    got = grep_segment(segment.header, segment.streams, pattern)
    needle = pattern.encode()
    assert got == [(i, line) for i, line in enumerate(lines) if needle in line]


_TOKENS = st.sampled_from(["a", "b", "<*>", "x=<*>", "<*>:<*>", "(<*>)", "<*>,", "a<*>b", "<*><*>"])


@given(
    st.lists(_TOKENS, min_size=1, max_size=5),
    st.text(alphabet="ab x=:(),1\t", max_size=24),
)
@settings(max_examples=1000, deadline=None)
def test_token_split_agrees_with_the_regex_split(tokens: list[str], line: str) -> None:
    """The Python splitter of small groups and the RE2 pattern of big ones split alike."""
    import pyarrow as pa

    from logpipe.archive.codec import _layout_pattern, _line_shapes, _split_line
    from logpipe.parsing.params import render_exact, split_exact

    template = " ".join(tokens)
    shape = _line_shapes(pa.array([line])).to_pylist()[0]
    compiled = _layout_pattern(template, shape)
    if compiled is None:
        return
    split = _split_line(template, compiled[1], line)
    reference = split_exact(template, line)
    if split is None:
        assert reference is None or render_exact(*reference) != line
        return
    assert render_exact(*split) == line
    assert reference is not None and list(reference[1]) == split[1]
    found = pa.compute.extract_regex(pa.array([line]), pattern=compiled[0])[0].as_py()
    assert found is not None and list(found.values()) == split[1]
