"""The Kafka alert sink against a real broker (noida-db, started by the fixtures)."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer
from logpipe.connectors.alerts import KafkaAlertSink, RetryPolicy

from logpipe.detect.alert import Alert, webhook_body
from logpipe.detect.dispatch import AlertDispatcher
from logpipe.detect.windows import EdgeExplanation, WindowScore
from logpipe.errors import AlertDeliveryError
from logpipe.pipeline.metrics import DetectMetrics
from tests.alert_receiver import closed_port
from tests.kafka_broker import Broker

pytestmark = pytest.mark.kafka

S = 1_000_000_000


def make_alert(key: str) -> Alert:
    edge = EdgeExplanation("user:mallory", "ip:10.9.9.9", "co-occurs", 4.0, 2)
    score = WindowScore(key, 60 * S, 120 * S, 3.0, 1.0, True, (edge,))
    return Alert(score, "pairs", "time", {"app": key}, events=5)


def consume(broker: Broker, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=500,
    )
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()
    return got


def test_alerts_are_records_keyed_by_window(kafka_broker: Broker) -> None:
    kafka_broker.create_topic("alerts", 2)
    metrics = DetectMetrics()
    sink = KafkaAlertSink(kafka_broker.bootstrap, "alerts", retry=RetryPolicy(timeout_s=10))
    dispatcher = AlertDispatcher([sink], metrics)
    alerts = [make_alert("auth"), make_alert("web"), make_alert("auth")]
    for a in alerts:
        dispatcher.submit(a)
    assert dispatcher.flush(20)
    dispatcher.close(10)
    got = consume(kafka_broker, "alerts", 3)
    assert sorted(k for k, _ in got) == [b"auth", b"auth", b"web"]
    for key, value in got:
        body = json.loads(value)
        assert body == webhook_body(make_alert(key.decode()))
    assert (
        metrics.registry.get_sample_value("logpipe_alerts_sent_total", {"sink": "kafka-alerts"})
        == 3
    )


def test_an_unreachable_broker_is_a_counted_failure_in_bounded_time() -> None:
    sink = KafkaAlertSink(
        f"127.0.0.1:{closed_port()}", "alerts", retry=RetryPolicy(timeout_s=1.0, max_attempts=1)
    )
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError) as info:
        sink.send([make_alert("auth")])
    assert info.value.reason == "kafka"
    assert time.monotonic() - started < 10
    sink.close()
