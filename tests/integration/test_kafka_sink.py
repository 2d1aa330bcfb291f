"""``logpipe serve`` with a Kafka output topic, against a real broker: every consumed line
is published once, as JSON with its template id, template, params, labels and time."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.daemonproc import ServeProcess, free_port, wait_until
from tests.kafka_broker import Broker

pytestmark = pytest.mark.kafka


def _consume_all(
    broker: Broker, topic: str, want: int, timeout_s: float
) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"check-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    out: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out += [json.loads(r.value) for r in records]
        for records in consumer.poll(timeout_ms=500).values():  # anything beyond: duplicates
            out += [json.loads(r.value) for r in records]
    finally:
        consumer.close()
    return out


def test_serve_publishes_every_parsed_line_once_to_the_output_topic(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    kafka_broker.create_topic("sink-in", 3)
    kafka_broker.create_topic("sink-out", 2)
    n = 3000
    lines = [
        f"request {i} from 10.1.{i % 7}.{i % 13} took {i % 97} ms"
        if i % 3
        else f"cache miss for key user:{i}"
        for i in range(n)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=5)
    for i, line in enumerate(lines):
        producer.send("sink-in", value=line.encode(), partition=i % 3)
    producer.flush()
    producer.close()
    port = free_port()
    config = tmp_path / "logpipe.toml"
    config.write_text(
        f'[store]\nroot = "{tmp_path / "store"}"\n'
        f'[[sources.kafka]]\nbootstrap = "{kafka_broker.bootstrap}"\ntopics = ["sink-in"]\n'
        'group = "g-sink"\nlabels = { app = "web" }\nsession_timeout_secs = 6.0\n'
        f'[[sinks.kafka]]\nbootstrap = "{kafka_broker.bootstrap}"\ntopic = "sink-out"\n'
        f"[pipeline]\nmax_batch_age_secs = 0.1\n[server]\nport = {port}\n"
    )
    daemon = ServeProcess(config, port, tmp_path)
    daemon.start()
    try:
        wait_until(
            lambda: daemon.metric("logpipe_sink_lines_total", sink="kafka-out") >= n,
            30,
            "every line published",
        )
        assert daemon.signal() == 0, daemon.logs()
    finally:
        daemon.kill()
    records = _consume_all(kafka_broker, "sink-out", n, 30)
    assert Counter(str(r["line"]) for r in records) == Counter(lines)  # each exactly once
    ids_of: dict[str, set[object]] = {}
    for r in records:
        assert r["labels"] == '{app="web", topic="sink-in"}'
        assert isinstance(r["ts"], int) and abs(r["ts"] - time.time_ns()) < 600 * 10**9
        template = str(r["template"])
        pieces = template.split("<*>")
        params = r["params"]
        assert isinstance(params, list) and len(params) == len(pieces) - 1
        rebuilt = pieces[0] + "".join(str(v) + p for v, p in zip(params, pieces[1:], strict=True))
        assert rebuilt == r["line"]
        ids_of.setdefault(template, set()).add(r["template_id"])
    # one id per template, two events, never one id for two templates
    assert all(len(ids) == 1 for ids in ids_of.values())
    assert len({next(iter(ids)) for ids in ids_of.values()}) == len(ids_of)
    assert {"request <*> from <*> took <*> ms", "cache miss for key user:<*>"} <= set(ids_of)
