"""Input expansion, decompression and line splitting (logpipe.io.inputs)."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.errors import InputError
from logpipe.io.inputs import InputSource, detect_compression, expand_inputs, read_batches


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _read_all(path: Path, **kwargs: int) -> tuple[list[bytes], list[int], list[int], list[bool]]:
    source = expand_inputs([str(path)])[0]
    lines: list[bytes] = []
    offsets: list[int] = []
    linenos: list[int] = []
    cut: list[bool] = []
    for rb in read_batches(source, **kwargs):
        lines += rb.batch.column("line").to_pylist()
        offsets += rb.batch.column("offset").to_pylist()
        linenos += rb.batch.column("lineno").to_pylist()
        n = rb.batch.num_rows
        cut += rb.truncated.to_pylist() if rb.truncated is not None else [False] * n
    return lines, offsets, linenos, cut


def _expected(data: bytes) -> tuple[list[bytes], list[int]]:
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    return lines, offsets


SAMPLE = b"first\r\n\nsecond \x00 nul\nbad \xff\xfe utf8\n" + b"x" * 1_500_000 + b"\nno newline"


# ------------------------------------------------------------------ expansion


def test_expand_files_dirs_globs_and_stdin(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "b.log", b"b\n")
    _write(tmp_path / "d" / "a.log", b"a\n")
    _write(tmp_path / "d" / "sub" / "c.log.gz", gzip.compress(b"c\n"))
    _write(tmp_path / "d" / ".hidden.log", b"h\n")
    _write(tmp_path / "d" / ".git" / "x.log", b"x\n")
    _write(tmp_path / "g1.log", b"1\n")
    _write(tmp_path / "g2.log", b"2\n")
    sources = expand_inputs([str(tmp_path / "d"), str(tmp_path / "g*.log"), "-"])
    names = [s.name for s in sources]
    assert names == ["a.log", "b.log", "c.log", "g1.log", "g2.log", "stdin"]
    assert sources[-1].is_stdin and sources[-1].size_bytes is None
    assert sources[0].size_bytes == 2


def test_expand_dedupes_and_disambiguates_names(tmp_path: Path) -> None:
    one = _write(tmp_path / "x" / "app.log", b"1\n")
    _write(tmp_path / "y" / "app.log.zst", zstandard.ZstdCompressor().compress(b"2\n"))
    sources = expand_inputs([str(one), str(tmp_path / "x"), str(tmp_path / "y")])
    assert [s.name for s in sources] == ["app.log", "app.log-2"]


def test_missing_path_and_empty_glob_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as err:
        expand_inputs([str(tmp_path / "nope.log")])
    assert str(tmp_path / "nope.log") in str(err.value)
    with pytest.raises(InputError, match="no file matches"):
        expand_inputs([str(tmp_path / "*.nothing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no .*files"):
        expand_inputs([str(tmp_path / "empty")])


def test_compression_is_detected_by_magic_bytes() -> None:
    assert detect_compression(gzip.compress(b"x")) == "gzip"
    assert detect_compression(zstandard.ZstdCompressor().compress(b"x")) == "zstd"
    assert detect_compression(b"plain text") == "plain"
    assert detect_compression(b"") == "plain"


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd", "gzip-misnamed", "zstd-misnamed"])
def test_lines_and_offsets_are_exact_for_every_compression(tmp_path: Path, kind: str) -> None:
    blob = {
        "plain": SAMPLE,
        "gzip": gzip.compress(SAMPLE),
        "zstd": zstandard.ZstdCompressor().compress(SAMPLE),
        "gzip-misnamed": gzip.compress(SAMPLE),
        "zstd-misnamed": zstandard.ZstdCompressor().compress(SAMPLE),
    }[kind]
    path = _write(tmp_path / "in.log", blob)
    lines, offsets, linenos, cut = _read_all(path, batch_bytes=1 << 16, batch_lines=3)
    want_lines, want_offsets = _expected(SAMPLE)
    assert lines == want_lines
    assert lines[0] == b"first\r"  # raw bytes keep the \r; only content drops it
    assert offsets == want_offsets
    assert linenos == list(range(1, len(want_lines) + 1))
    assert not any(cut)


def test_empty_file_has_no_lines(tmp_path: Path) -> None:
    assert _read_all(_write(tmp_path / "e.log", b""))[0] == []
    assert _read_all(_write(tmp_path / "e.gz", gzip.compress(b"")))[0] == []


def test_only_newlines_are_empty_lines(tmp_path: Path) -> None:
    assert _read_all(_write(tmp_path / "n.log", b"\n\n\n"))[0] == [b"", b"", b""]


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Path) -> None:
    data_a, data_b = b"a1\na2\n", b"b1\nb2"
    gz = _write(tmp_path / "m.gz", gzip.compress(data_a) + gzip.compress(data_b) + b"\0" * 8)
    cctx = zstandard.ZstdCompressor()
    zst = _write(tmp_path / "m.zst", cctx.compress(data_a) + cctx.compress(data_b))
    for path in (gz, zst):
        lines, offsets, _, _ = _read_all(path)
        assert lines == [b"a1", b"a2", b"b1", b"b2"]
        assert offsets == [0, 3, 6, 9]


def test_overlong_line_is_cut_and_flagged(tmp_path: Path) -> None:
    data = b"short\n" + b"y" * 5000 + b"\nafter\n" + b"z" * 3000
    path = _write(tmp_path / "long.log", data)
    for chunk in (1 << 16, 1024, 7):
        lines, offsets, _, cut = _read_all(path, batch_bytes=chunk, max_line_bytes=1000)
        assert lines == [b"short", b"y" * 1000, b"after", b"z" * 1000]
        assert offsets == [0, 6, 5007, 5013]
        assert cut == [False, True, False, True]


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_stream_yields_complete_lines_then_raises(tmp_path: Path, kind: str) -> None:
    data = b"".join(b"line %06d of the log\n" % i for i in range(50_000))
    blob = gzip.compress(data) if kind == "gzip" else zstandard.ZstdCompressor().compress(data)
    path = _write(tmp_path / f"t.{kind}", blob[: len(blob) // 2])
    got: list[bytes] = []
    with pytest.raises(InputError) as err:
        for rb in read_batches(expand_inputs([str(path)])[0], batch_bytes=1 << 14):
            got += rb.batch.column("line").to_pylist()
    message = str(err.value)
    assert str(path) in message and "truncated" in message
    assert err.value.offset is not None and err.value.offset > 0
    assert f"at byte {err.value.offset}" in message
    assert got, "complete lines before the damage must be yielded"
    assert got == data.split(b"\n")[: len(got)]
    # every complete line decompressed before the error was yielded
    assert err.value.offset - sum(len(x) + 1 for x in got) < len(got[0]) + 1


def test_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(b"".join(b"row %d\n" % i for i in range(10_000))))
    blob[len(blob) // 2 : len(blob) // 2 + 50] = b"\xaa" * 50
    path = _write(tmp_path / "c.gz", bytes(blob))
    with pytest.raises(InputError, match="gzip"):
        list(read_batches(expand_inputs([str(path)])[0]))


def test_garbage_after_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.gz", gzip.compress(b"ok\n") + b"garbage")
    with pytest.raises(InputError, match="after the end"):
        list(read_batches(expand_inputs([str(path)])[0]))


def test_stdin_is_read_and_decompressed(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = gzip.compress(b"s1\ns2\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(blob)))
    source = InputSource(path="-", name="stdin", size_bytes=None)
    batches = list(read_batches(source))
    assert batches[0].batch.column("line").to_pylist() == [b"s1", b"s2"]
    assert batches[0].batch.column("source").to_pylist() == ["<stdin>", "<stdin>"]


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "secret.log", b"x\n")
    source = expand_inputs([str(path)])[0]
    path.unlink()
    with pytest.raises(InputError, match="cannot open"):
        list(read_batches(source))


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"\n", b"\r\n", b"a", b"bc", b"\xff", b"\x00", b"long" * 40]),
        max_size=80,
    ).map(b"".join),
    chunk=st.integers(min_value=1, max_value=64),
    max_line=st.integers(min_value=1, max_value=400),
    batch_lines=st.integers(min_value=1, max_value=5),
)
def test_splitting_matches_bytes_split(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    chunk: int,
    max_line: int,
    batch_lines: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.log"
    path.write_bytes(data)
    lines, offsets, linenos, cut = _read_all(
        path, batch_bytes=chunk, max_line_bytes=max_line, batch_lines=batch_lines
    )
    want_lines, want_offsets = _expected(data)
    assert lines == [w[:max_line] for w in want_lines]
    assert cut == [len(w) > max_line for w in want_lines]
    assert offsets == want_offsets
    assert linenos == list(range(1, len(want_lines) + 1))
    os.unlink(path)
