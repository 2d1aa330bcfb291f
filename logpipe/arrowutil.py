"""Small Arrow helpers shared by the stages.

Why :func:`from_numpy` exists: ``pa.array(ndarray)`` imports ``numpy.ma`` on first use
(20-50 ms, a large share of a short ``logpipe parse``); wrapping the ndarray's buffer is
zero-copy and imports nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["from_numpy"]


def from_numpy(values: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """A primitive (int, float, bool) 1-d ndarray as an Arrow array, without nulls."""
    arr = np.ascontiguousarray(values)
    if arr.ndim != 1:
        raise ValueError(f"from_numpy() needs a 1-d array, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        bits = np.packbits(arr, bitorder="little")
        out = pa.Array.from_buffers(pa.bool_(), len(arr), [None, pa.py_buffer(bits)])
    else:
        arrow_type = pa.from_numpy_dtype(arr.dtype)
        out = pa.Array.from_buffers(arrow_type, len(arr), [None, pa.py_buffer(arr)])
    return out if type is None or out.type == type else out.cast(type)
