from logpipe.records import RAW_SCHEMA, raw_batch


def test_raw_batch_keeps_bytes_and_offsets() -> None:
    batch = raw_batch([b"a\xff", b"", b"ccc"], source="x.log")
    assert batch.schema == RAW_SCHEMA
    assert batch.column("line").to_pylist() == [b"a\xff", b"", b"ccc"]
    assert batch.column("offset").to_pylist() == [0, 3, 4]
    assert batch.column("lineno").to_pylist() == [1, 2, 3]
    assert batch.column("source").to_pylist() == ["x.log"] * 3


def test_raw_batch_from_a_ready_binary_array() -> None:
    import numpy as np
    import pyarrow as pa

    lines = pa.array([b"x", b"yy"], pa.binary())
    batch = raw_batch(lines, source="-", offsets=np.array([10, 12]), first_lineno=5)
    assert batch.column("line").to_pylist() == [b"x", b"yy"]
    assert batch.column("offset").to_pylist() == [10, 12]
    assert batch.column("lineno").to_pylist() == [5, 6]
    assert batch.column("partition").to_pylist() == [0, 0]


def test_an_empty_batch_has_the_raw_schema_and_no_rows() -> None:
    # A source that polls nothing (an idle partition, an empty read) may build one.
    batch = raw_batch([])
    assert batch.num_rows == 0
    assert batch.schema == RAW_SCHEMA
