"""Zigzag varints over numpy arrays: how integer columns are stored before zstd.

Why varints and deltas: a column of counters, times or sizes changes by small steps, so its
deltas are small numbers that take one or two bytes each, and zstd compresses the result far
better than text digits. Vectorised with numpy; no per-value Python work.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_varints", "encode_varints", "zigzag_decode", "zigzag_encode"]


def zigzag_encode(values: np.ndarray) -> np.ndarray:
    """int64 -> uint64 with small magnitudes (positive or negative) near zero."""
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def zigzag_decode(values: np.ndarray) -> np.ndarray:
    u = values.astype(np.uint64)
    return ((u >> np.uint64(1)).astype(np.int64)) ^ (-(u & np.uint64(1)).astype(np.int64))


def encode_varints(values: np.ndarray) -> bytes:
    """LEB128 encoding of unsigned 64-bit integers."""
    u = values.astype(np.uint64)
    if len(u) == 0:
        return b""
    # number of 7-bit groups per value (1..10)
    nbits = np.zeros(len(u), dtype=np.int64)
    nonzero = u > 0
    nbits[nonzero] = np.floor(np.log2(u[nonzero].astype(np.float64))).astype(np.int64) + 1
    # float log2 can be off by one near powers of two: fix exactly
    too_small = (nbits < 64) & (u >= (np.uint64(1) << np.minimum(nbits, 63).astype(np.uint64)))
    nbits[too_small & nonzero] += 1
    groups = np.maximum(1, (nbits + 6) // 7)
    total = int(groups.sum())
    out = np.empty(total, dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum(groups)[:-1]))
    remaining = u.copy()
    for g in range(int(groups.max())):
        active = groups > g
        idx = starts[active] + g
        chunk = (remaining[active] & np.uint64(0x7F)).astype(np.uint8)
        more = groups[active] > g + 1
        out[idx] = chunk | (more.astype(np.uint8) << 7)
        remaining[active] >>= np.uint64(7)
    return out.tobytes()


def decode_varints(data: bytes, count: int) -> np.ndarray:
    """Decode ``count`` LEB128 integers; raises ValueError on a short or malformed buffer."""
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero((raw & 0x80) == 0)
    if len(ends) < count:
        raise ValueError(f"varint stream holds {len(ends)} values, expected {count}")
    ends = ends[:count]
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise ValueError("varint longer than 10 bytes")
    values = np.zeros(count, dtype=np.uint64)
    for g in range(int(lengths.max())):
        active = lengths > g
        byte = raw[starts[active] + g].astype(np.uint64) & np.uint64(0x7F)
        values[active] |= byte << np.uint64(7 * g)
    return values
