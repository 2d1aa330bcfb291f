"""The 8-gram filter's window hashes: every newline-free 8-byte window, hashed as the
little-endian integer it is (checked against a per-window reference)."""

from __future__ import annotations

import numpy as np

from logpipe.store.grams import (
    _GOLDEN,
    _MAX_LOG2,
    GRAM,
    _window_hashes,
    build_grams,
    grams_may_contain,
)


def _reference(data: bytes) -> list[int]:
    out = []
    for i in range(len(data) - GRAM + 1):
        window = data[i : i + GRAM]
        if b"\n" in window:
            continue
        value = int.from_bytes(window, "little")
        out.append(((value * int(_GOLDEN)) % (1 << 64)) >> (64 - _MAX_LOG2))
    return sorted(out)


def test_window_hashes_match_the_per_window_definition() -> None:
    rng = np.random.default_rng(8)
    for length in [*range(0, 40), 257, 1000]:
        raw = rng.integers(0, 12, length).astype(np.uint8)
        raw[raw == 11] = 10  # plenty of newlines
        data = raw.tobytes()
        got = _window_hashes(np.frombuffer(data, dtype=np.uint8))
        assert sorted(got.tolist()) == _reference(data), length


def test_filter_finds_every_stored_substring_and_rejects_absent_ids() -> None:
    rng = np.random.default_rng(9)
    lines = [f"req {rng.integers(10**15)} user{i % 7} ok".encode() for i in range(3000)]
    stream = build_grams(lines)
    for line in lines[::97]:
        assert grams_may_contain(stream, line[4:20])
    absent = [f"{rng.integers(10**15, 10**16)}".encode() for _ in range(200)]
    assert sum(grams_may_contain(stream, a) for a in absent) <= 2


def test_filter_is_the_same_whatever_the_block_size() -> None:
    rng = np.random.default_rng(10)
    lines = [rng.integers(32, 127, int(rng.integers(0, 60))).astype(np.uint8).tobytes()
             for _ in range(300)]  # fmt: skip
    whole = build_grams(lines, block_bytes=1 << 30)
    for block in (1, 7, 8, 9, 100, 4096):
        assert build_grams(lines, block_bytes=block) == whole, block
    assert build_grams([], block_bytes=3) == build_grams([])
