"""Properties of the archive container that must hold for every input and every damage.

The damage contract: a reader never returns wrong data and never raises anything but
:class:`ArchiveError`. Normal mode returns the complete archive or an error; salvage returns
only segments equal to what was written, and every segment the damage did not touch.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.archive.container import ArchiveError, ArchiveReader, ArchiveWriter

Streams = dict[str, bytes]
Segments = list[tuple[dict[str, Any], Streams]]

# JSON values that round-trip exactly (no NaN, str keys, lists not tuples).
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
headers = st.dictionaries(st.text(max_size=10), json_value, max_size=5)
# Small binary, repetitive (compressible) and occasionally large (hundreds of KB) streams.
stream_data = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=20), st.integers(1, 200)),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=300), st.integers(1, 2000)),
)
stream_sets = st.dictionaries(st.text(max_size=10), stream_data, max_size=4)


@functools.cache
def workdir() -> Path:
    """One directory for the whole module (Hypothesis examples cannot use ``tmp_path``)."""
    path = Path(tempfile.mkdtemp(prefix="logpipe-container-props-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def write(path: Path, meta: dict[str, Any], segments: Segments, level: int = 1) -> None:
    with ArchiveWriter(path, meta, level) as writer:
        for header, streams in segments:
            writer.add_segment(header, streams)


@functools.cache
def reference() -> tuple[bytes, Segments, list[tuple[int, int]]]:
    """A fixed archive for the damage properties, with its segments and their byte spans."""
    segments: Segments = [
        (
            {"i": i, "name": f"seg{i}"},
            {
                "text": b"2024-01-01 INFO block %d replicated\n" % i * (20 + 30 * i),
                "bin": bytes(range(i * 7 % 256, 256)) * 2,
                "empty": b"",
            },
        )
        for i in range(6)
    ]
    path = workdir() / "reference.lpz"
    write(path, {"source": "reference"}, segments)
    with ArchiveReader(path) as reader:
        spans = [(info.offset, info.offset + info.length) for info in reader.segments]
    return path.read_bytes(), segments, spans


def damaged_copy(data: bytes) -> Path:
    path = workdir() / "damaged.lpz"
    path.write_bytes(data)
    return path


def readable(path: Path, *, salvage: bool) -> Iterator[tuple[int, Streams | None]]:
    """(index, streams) per listed segment; ``None`` streams when reading raised ArchiveError.

    Any other exception propagates and fails the property.
    """
    with ArchiveReader(path, salvage=salvage) as reader:
        for info in reader.segments:
            try:
                yield info.index, reader.read(info.index).streams
            except ArchiveError:
                yield info.index, None


def check_normal(path: Path, segments: Segments) -> None:
    """Normal mode: ArchiveError naming a place, or every segment exactly as written."""
    try:
        got = list(readable(path, salvage=False))
    except ArchiveError as error:
        assert " at byte " in str(error)
        return
    assert [index for index, _ in got] == list(range(len(segments)))
    for index, streams in got:
        assert streams is None or streams == segments[index][1]


def check_salvage(path: Path, segments: Segments, must_have: set[int]) -> None:
    """Salvage: only correct segments, and at least every one in ``must_have``."""
    got = dict(readable(path, salvage=True))
    for index, streams in got.items():
        assert streams == segments[index][1]  # salvage verified every stream on open
    assert must_have <= set(got)


@settings(max_examples=100, deadline=None)
@given(meta=headers, segments=st.lists(st.tuples(headers, stream_sets), max_size=5))
def test_round_trip(meta: dict[str, Any], segments: Segments) -> None:
    path = workdir() / "round.lpz"
    write(path, meta, segments)
    for salvage in (False, True):
        with ArchiveReader(path, salvage=salvage) as reader:
            assert reader.meta == meta
            assert reader.damaged == []
            got = [(s.info.header, s.streams) for s in reader]
            assert got == segments
            for info, (_, streams) in zip(reader.segments, segments, strict=True):
                names = sorted(streams)[::2]
                assert reader.read(info.index, names).streams == {n: streams[n] for n in names}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncation(data: st.DataObject) -> None:
    original, segments, spans = reference()
    cut = data.draw(st.integers(0, len(original) - 1), label="cut")
    path = damaged_copy(original[:cut])
    check_normal(path, segments)
    try:
        check_salvage(path, segments, {i for i, (_, end) in enumerate(spans) if end <= cut})
    except ArchiveError:
        assert cut < spans[0][0]  # only a file header that is cut short is fatal


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_byte_flip(data: st.DataObject) -> None:
    original, segments, spans = reference()
    at = data.draw(st.integers(0, len(original) - 1), label="at")
    mask = data.draw(st.integers(1, 255), label="mask")
    damaged = bytearray(original)
    damaged[at] ^= mask
    path = damaged_copy(bytes(damaged))
    check_normal(path, segments)
    try:
        # One flipped byte costs at most the segment it lies in.
        check_salvage(path, segments, {i for i, (s, e) in enumerate(spans) if not s <= at < e})
    except ArchiveError:
        assert at < 10  # magic or version: not an archive of ours, or a future version


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_overwritten_run(data: st.DataObject) -> None:
    """A run of random bytes anywhere (a bad sector, a botched copy): same contract."""
    original, segments, spans = reference()
    at = data.draw(st.integers(0, len(original) - 1), label="at")
    junk = data.draw(st.binary(min_size=1, max_size=64), label="junk")
    damaged = original[:at] + junk + original[at + len(junk) :]
    path = damaged_copy(damaged)
    check_normal(path, segments)
    end = at + len(junk)
    untouched = {i for i, (s, e) in enumerate(spans) if e <= at or s >= end}
    try:
        check_salvage(path, segments, untouched)
    except ArchiveError:
        assert at < 10


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_salvage_loses_exactly_the_damaged_segment(data: st.DataObject) -> None:
    original, segments, spans = reference()
    victim = data.draw(st.integers(1, len(spans) - 2), label="victim")
    start, end = spans[victim]
    at = data.draw(st.integers(start, end - 1), label="at")
    keep_footer = data.draw(st.booleans(), label="keep_footer")
    damaged = bytearray(original if keep_footer else original[: spans[-1][1]])
    damaged[at] ^= data.draw(st.integers(1, 255), label="mask")
    path = damaged_copy(bytes(damaged))
    with ArchiveReader(path, salvage=True) as reader:
        assert [info.index for info in reader.segments] == [
            i for i in range(len(spans)) if i != victim
        ]
        assert reader.lost == [victim]
        assert any(f"segment {victim} at byte" in message for message in reader.damaged)
        for segment in reader:
            assert segment.streams == segments[segment.info.index][1]
