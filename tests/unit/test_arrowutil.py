import numpy as np
import pyarrow as pa
import pytest

from logpipe.arrowutil import from_numpy


@pytest.mark.parametrize(
    "values",
    [
        np.arange(5, dtype=np.int64),
        np.arange(3, dtype=np.int32),
        np.array([True, False, True, True, False, False, True, False, True]),
        np.array([], dtype=np.int64),
        np.arange(10, dtype=np.int64)[::3],
    ],
)
def test_from_numpy_matches_pa_array(values: np.ndarray) -> None:
    got = from_numpy(values)
    assert got.equals(pa.array(values))


def test_from_numpy_casts_and_rejects_2d() -> None:
    assert from_numpy(np.arange(3, dtype=np.int32), pa.int64()).type == pa.int64()
    with pytest.raises(ValueError, match="1-d"):
        from_numpy(np.zeros((2, 2)))
