"""Alert sinks over real loopback sockets: bodies, retries, failures, the dispatcher."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import pytest
from logpipe.connectors.alerts import AlertmanagerSink, RetryPolicy, WebhookSink, alert_json

from logpipe.detect.alert import Alert, webhook_body
from logpipe.detect.dispatch import AlertDispatcher
from logpipe.detect.windows import EdgeExplanation, WindowScore
from logpipe.errors import AlertDeliveryError
from logpipe.pipeline.metrics import DetectMetrics
from tests.alert_receiver import closed_port, receiver

S = 1_000_000_000
FAST = RetryPolicy(timeout_s=2.0, max_attempts=3, backoff_s=0.01)


def make_alert(key: str = '{app="auth"}', score: float = 3.0) -> Alert:
    edge = EdgeExplanation("user:mallory", "ip:10.9.9.9", "co-occurs", 4.0, 2)
    ws = WindowScore(key, 60 * S, 120 * S, score, 1.0, True, (edge,))
    return Alert(ws, "pairs", "time", {"app": "auth"}, events=10, query='{app="auth"}')


def sample(metrics: DetectMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_webhook_posts_the_alert_json_with_headers() -> None:
    with receiver() as r:
        sink = WebhookSink(
            r.url + "/hooks/logpipe", headers={"Authorization": "Bearer t0k"}, retry=FAST
        )
        assert sink.send([make_alert()]) == 1
        [post] = r.posts
    assert post.path == "/hooks/logpipe"
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Authorization"] == "Bearer t0k"
    assert post.json() == webhook_body(make_alert())
    assert post.body == alert_json(make_alert())


def test_5xx_is_retried_with_backoff_until_accepted() -> None:
    with receiver([500, 503, 200]) as r:
        assert WebhookSink(r.url, retry=FAST).send([make_alert()]) == 3
        assert len(r.posts) == 3
        assert r.posts[0].body == r.posts[2].body


def test_persistent_5xx_gives_up_after_max_attempts() -> None:
    with receiver([500]) as r:
        with pytest.raises(AlertDeliveryError) as info:
            WebhookSink(r.url, name="hook", retry=FAST).send([make_alert()])
        assert len(r.posts) == 3
    err = info.value
    assert (err.sink, err.reason, err.attempts) == ("hook", "http_5xx", 3)
    assert "answered 500" in str(err)


def test_4xx_is_not_retried_but_429_is() -> None:
    with receiver([400]) as r:
        with pytest.raises(AlertDeliveryError) as info:
            WebhookSink(r.url, retry=FAST).send([make_alert()])
        assert (info.value.reason, info.value.attempts, len(r.posts)) == ("http_4xx", 1, 1)
    with receiver([429, 200]) as r:
        assert WebhookSink(r.url, retry=FAST).send([make_alert()]) == 2


def test_server_down_is_a_connection_failure() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(AlertDeliveryError) as info:
        WebhookSink(url, retry=FAST).send([make_alert()])
    assert (info.value.reason, info.value.attempts) == ("connection", 3)


def test_a_silent_server_times_out() -> None:
    with receiver(delay_s=1.0) as r:
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError) as info:
            WebhookSink(r.url, retry=RetryPolicy(timeout_s=0.2, max_attempts=1)).send(
                [make_alert()]
            )
        assert time.monotonic() - started < 0.9
    assert info.value.reason == "timeout"


def test_cancel_stops_retrying() -> None:
    sink = WebhookSink(
        f"http://127.0.0.1:{closed_port()}/", retry=RetryPolicy(max_attempts=10, backoff_s=5.0)
    )
    threading.Timer(0.2, sink.cancel).start()
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError) as info:
        sink.send([make_alert()])
    assert info.value.reason == "cancelled" and time.monotonic() - started < 2.0


def test_alertmanager_gets_one_list_per_batch_on_its_v2_path() -> None:
    with receiver() as r:
        sink = AlertmanagerSink(r.url, severity="page", retry=FAST)
        sink.send([make_alert('{app="a"}'), make_alert('{app="b"}')])
        [post] = r.posts
    assert post.path == "/api/v2/alerts"
    body = post.json()
    assert isinstance(body, list) and len(body) == 2
    assert {a["labels"]["severity"] for a in body} == {"page"}
    assert body[0]["labels"]["alertname"] == "LogAnomaly"
    assert body[0]["startsAt"] == "1970-01-01T00:01:00Z"
    assert "user:mallory -[co-occurs]-> ip:10.9.9.9" in body[0]["annotations"]["description"]


class Flaky:
    """A sink whose first send raises an unexpected error (a bug), then records."""

    max_batch = 1

    def __init__(self, name: str = "flaky", raise_first: bool = True) -> None:
        self.name = name
        self.sent: list[str] = []
        self.closed = False
        self.raise_next = raise_first

    def send(self, alerts: Sequence[Alert]) -> int:
        if self.raise_next:
            self.raise_next = False
            raise RuntimeError("bug")
        self.sent += [a.key for a in alerts]
        return 1

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_dispatcher_counts_every_outcome_and_keeps_going() -> None:
    metrics = DetectMetrics()
    flaky = Flaky()
    with receiver([500, 200]) as good:
        down = WebhookSink(
            f"http://127.0.0.1:{closed_port()}/",
            name="down",
            retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
        )
        ok = WebhookSink(good.url, name="ok", retry=FAST)
        dispatcher = AlertDispatcher([down, ok, flaky], metrics)
        dispatcher.submit(make_alert("k1"))
        dispatcher.submit(make_alert("k2"))
        assert dispatcher.flush(10.0)
        dispatcher.close(5.0)
        assert [p.json()["key"] for p in good.posts] == ["k1", "k1", "k2"]  # k1 retried once
    assert sample(metrics, "logpipe_alerts_sent_total", sink="ok") == 2
    assert sample(metrics, "logpipe_alert_retries_total", sink="ok") == 1
    assert (
        sample(metrics, "logpipe_alert_send_failures_total", sink="down", reason="connection") == 2
    )
    assert sample(metrics, "logpipe_alert_retries_total", sink="down") == 2
    assert sample(metrics, "logpipe_alert_send_failures_total", sink="flaky", reason="error") == 1
    assert flaky.sent == ["k2"] and flaky.closed


def test_a_full_queue_fails_fast_for_that_sink_only() -> None:
    metrics = DetectMetrics()
    gate = threading.Event()

    class Slow(Flaky):
        def send(self, alerts: Sequence[Alert]) -> int:
            gate.wait(5)
            self.sent += [a.key for a in alerts]
            return 1

    slow = Slow("slow", raise_first=False)
    fast = Flaky("fast", raise_first=False)
    dispatcher = AlertDispatcher([slow, fast], metrics, queue_alerts=2)
    for i in range(6):
        started = time.monotonic()
        dispatcher.submit(make_alert(f"k{i}"))
        assert time.monotonic() - started < 0.1  # submit never waits on a receiver
        while len(fast.sent) <= i:  # the healthy sink keeps up
            time.sleep(0.005)
    gate.set()
    assert dispatcher.flush(5.0)
    dispatcher.close(1.0)
    assert fast.sent == [f"k{i}" for i in range(6)]
    full = sample(metrics, "logpipe_alert_send_failures_total", sink="slow", reason="queue_full")
    assert full >= 3 and len(slow.sent) + full == 6
    assert json.loads(alert_json(make_alert()))["key"] == '{app="auth"}'
