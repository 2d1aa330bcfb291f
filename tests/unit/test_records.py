from logpipe.records import RAW_SCHEMA, raw_batch


def test_raw_batch_keeps_bytes_and_offsets() -> None:
    batch = raw_batch([b"a\xff", b"", b"ccc"], source="x.log")
    assert batch.schema == RAW_SCHEMA
    assert batch.column("line").to_pylist() == [b"a\xff", b"", b"ccc"]
    assert batch.column("offset").to_pylist() == [0, 3, 4]
    assert batch.column("lineno").to_pylist() == [1, 2, 3]
    assert batch.column("source").to_pylist() == ["x.log"] * 3
