"""Kafka payload decoding and the store sink's idempotence, without a broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pytest
from logpipe.connectors.kafka import KafkaSourceConfig, decode_records, parse_ts

from logpipe.errors import PipelineError
from logpipe.pipeline import StoreSink
from logpipe.records import raw_batch
from logpipe.store import Store


class Rec(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _cfg(**kw: Any) -> KafkaSourceConfig:
    return KafkaSourceConfig(bootstrap_servers="x", topics=["logs"], group_id="g", **kw)


def _recs(
    *values: bytes | None, headers: list[tuple[str, bytes | None]] | None = None
) -> list[Rec]:
    return [Rec("logs", 2, i, 1_700_000_000_000, v, headers or []) for i, v in enumerate(values)]


def test_plain_text_lines_keep_their_bytes_and_the_kafka_timestamp() -> None:
    out = decode_records(_recs(b"hello\n", b"\xff\xfe not utf-8", b"crlf\r\n"), _cfg())
    assert out.lines == [b"hello", b"\xff\xfe not utf-8", b"crlf"]
    assert out.ts == [1_700_000_000_000 * 1_000_000] * 3
    assert out.labels == ['{topic="logs"}'] * 3
    assert out.offsets == [0, 1, 2]
    assert not out.drops


def test_json_envelope_line_ts_and_labels() -> None:
    env = {"line": "GET /x 200", "ts": "2024-01-02T03:04:05.5Z", "labels": {"app": "web"}}
    plain_json = b'{"level": "info", "msg": "no line key"}'
    cfg = _cfg(labels={"env": "dev"}, partition_label="partition")
    out = decode_records(_recs(json.dumps(env).encode(), plain_json), cfg)
    assert out.lines == [b"GET /x 200", plain_json]
    assert out.ts[0] == 1_704_164_645_500_000_000
    assert out.labels[0] == '{app="web", env="dev", partition="2", topic="logs"}'
    assert out.labels[1] == '{env="dev", partition="2", topic="logs"}'


def test_bad_input_is_counted_never_raised() -> None:
    values = [
        None,
        b"{not json",
        b'{"line": 5}',
        b'{"line": "x", "labels": {"bad-name": "v"}}',
        b"y" * 100,
    ]
    out = decode_records(_recs(*values), _cfg(max_line_bytes=10, oversize="drop"))
    assert out.lines == [b"{not json"]  # auto: not JSON after all, so a text line
    assert out.drops.counts == {
        "null_payload": 1,
        "invalid_json": 1,
        "invalid_labels": 1,
        "line_too_long": 1,
    }
    strict = decode_records(_recs(b"{not json", b"text"), _cfg(payload="json"))
    assert strict.drops.counts == {"invalid_json": 2}
    cut = decode_records(_recs(b"y" * 100), _cfg(max_line_bytes=10))
    assert cut.lines == [b"y" * 10] and cut.truncated == 1


def test_header_labels() -> None:
    cfg = _cfg(header_labels={"host": "host"}, topic_label=None)
    out = decode_records(_recs(b"a", headers=[("host", b"n1"), ("other", b"z")]), cfg)
    assert out.labels == ['{host="n1"}']


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000 * 10**9),
        (1_700_000_000.25, 1_700_000_000_250_000_000),
        (1_700_000_000_123, 1_700_000_000_123_000_000),
        (1_700_000_000_123_456, 1_700_000_000_123_456_000),
        (1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
        ("1700000000123456789", 1_700_000_000_123_456_789),
        ("2023-11-14T22:13:20+00:00", 1_700_000_000 * 10**9),
        ("yesterday", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_ts(value: object, expected: int | None) -> None:
    assert parse_ts(value) == expected


def test_config_rejects_bad_labels_and_payloads() -> None:
    with pytest.raises(PipelineError, match="invalid label name"):
        _cfg(labels={"bad-name": "x"})
    with pytest.raises(PipelineError, match="payload"):
        _cfg(payload="xml")
    with pytest.raises(PipelineError, match="topic"):
        KafkaSourceConfig(bootstrap_servers="x", topics=[], group_id="g")


def _table(first: int, n: int, text: bytes = b"l") -> pa.Table:
    lines = [text + str(i).encode() for i in range(first, first + n)]
    batch = raw_batch(lines, source="t", offsets=list(range(first, first + n)), labels='{a="b"}')
    ts = pa.array([10**18 + i for i in range(first, first + n)], pa.int64()).cast(
        pa.timestamp("ns", tz="UTC")
    )
    return pa.Table.from_batches([batch.set_column(0, "ts", ts)])


def _all_lines(store: Store) -> list[bytes]:
    return [
        x for b in store.read("fake", direction="forward") for x in b.column("line").to_pylist()
    ]


def test_store_sink_skips_redelivered_ranges_and_trims_overlaps(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sink = StoreSink(store)
    assert sink.resume_offset(("t", 0)) is None
    assert sink.write(("t", 0), _table(0, 10), (0, 9)).lines == 10
    assert sink.write(("t", 0), _table(0, 10), (0, 9)).duplicate
    assert sink.write(("t", 0), _table(5, 10), (5, 14)).lines == 5  # 10..14 are new
    assert sink.resume_offset(("t", 0)) == 14
    assert _all_lines(store) == [b"l%d" % i for i in range(15)]


def test_store_sink_keeps_multiline_entries_whole(tmp_path: Path) -> None:
    store = Store(tmp_path)
    StoreSink(store).write(("t", 0), _table(0, 1, b"Exception\n\tat x\n"), None)
    assert _all_lines(store) == [b"Exception\n\tat x\n0"]


class _RevokingConsumer:
    """A consumer in the middle of a rebalance, as kafka-python 3 behaves then."""

    def __init__(self, **_: Any) -> None:
        self.async_commits: list[dict[Any, Any]] = []

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def assignment(self) -> set[Any]:
        return set()  # everything was just revoked

    def highwater(self, tp: Any) -> int:
        from kafka.errors import IllegalStateError

        raise IllegalStateError("Partition is not assigned")

    def commit(self, offsets: dict[Any, Any]) -> None:
        raise RuntimeError("Cannot block on net.run() from the IO thread itself.")

    def commit_async(self, offsets: dict[Any, Any]) -> None:
        self.async_commits.append(offsets)


def test_a_rebalance_during_shutdown_neither_stops_nor_blocks_the_source() -> None:
    """Regression (CI): a revocation on kafka-python's IO thread refused the blocking commit,
    and lag() then asked for a partition no longer assigned; the source stopped with exit 1."""
    from kafka import TopicPartition
    from logpipe.connectors.kafka import KafkaSource

    source = KafkaSource(_cfg(), consumer_factory=_RevokingConsumer)
    source.open(drain=lambda timeout: True, resume=lambda key: None)
    tp = TopicPartition("logs", 0)
    source._consumed[tp] = 41
    source._acked[tp] = 42
    assert source.lag() == {}
    source.on_revoked([tp])  # commits without blocking instead of raising
    consumer = source._consumer
    assert consumer.async_commits and tp in consumer.async_commits[0]
