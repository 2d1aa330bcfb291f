"""The online detection stage with a real webhook receiver on loopback: windows close at
the right times, a planted anomaly gives exactly one alert with its edges, bounds and
failures are counted, and the batches always pass through untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pytest
from logpipe.connectors.alerts import AlertmanagerSink, RetryPolicy, WebhookSink

from logpipe.detect.alert import AlertSink
from logpipe.detect.stage import DetectSettings, DetectStage
from logpipe.detect.windows import Window, WindowScore
from logpipe.pipeline.metrics import DetectMetrics
from logpipe.records import raw_batch
from tests.alert_receiver import Receiver, closed_port, receiver
from tests.detectors import PairDetector

S = 1_000_000_000
T0 = 1_699_999_980  # a multiple of 60: windows of 60 s start at T0 + 60 k
AUTH, WEB = '{app="auth"}', '{app="web"}'
USERS = [("alice", "10.0.0.1"), ("bob", "10.0.0.2"), ("carol", "10.0.0.3")]
PLANTED = ("alice", "203.0.113.7")
FAST = RetryPolicy(timeout_s=2.0, max_attempts=2, backoff_s=0.01)


def traffic(
    labels: str, seconds: int, every_s: int = 2, planted_at: int | None = None
) -> list[tuple[int, bytes]]:
    """(ts_ns, line) of normal logins, plus the planted pair at ``planted_at`` seconds."""
    out = []
    for i, t in enumerate(range(0, seconds, every_s)):
        user, ip = USERS[i % len(USERS)]
        out.append(((T0 + t) * S, f"login ok user={user} ip={ip} stream={labels}".encode()))
        if t == planted_at:
            out.append(((T0 + t) * S + 1, f"login ok user={PLANTED[0]} ip={PLANTED[1]}".encode()))
    return out


def batches(rows: list[tuple[int, bytes]], labels: str, size: int = 25) -> list[pa.RecordBatch]:
    out = []
    for i in range(0, len(rows), size):
        part = rows[i : i + size]
        ts = np.array([r[0] for r in part], dtype=np.int64)
        out.append(raw_batch([r[1] for r in part], labels=labels, ts=ts, first_lineno=i + 1))
    return out


def sample(metrics: DetectMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def stage(
    sinks: Sequence[AlertSink],
    detector: object | None = None,
    now_ns: int | None = None,
    **settings: object,
) -> Iterator[DetectStage]:
    """A stage with a real dispatcher; ``now_ns`` fixes the wall clock it compares with."""
    base: dict[str, object] = {
        "window_secs": 60.0,
        "idle_secs": 30.0,
        "tick_secs": 0.02,
        "api_url": "http://logpipe.test:3100",
    }
    base.update(settings)
    st = DetectStage(
        detector or PairDetector(set(USERS)),  # type: ignore[arg-type]
        sinks,
        DetectSettings(**base),  # type: ignore[arg-type]
        metrics=DetectMetrics(),
        now_ns=time.time_ns if now_ns is None else (lambda: now_ns),
    )
    try:
        yield st
    finally:
        st.close()


def test_a_planted_anomaly_gives_exactly_one_alert_with_its_edges() -> None:
    auth = batches(traffic(AUTH, 300, planted_at=150), AUTH)
    web = batches(traffic(WEB, 300), WEB)
    with receiver() as r, stage([WebhookSink(r.url, retry=FAST)]) as st:
        for b in [x for pair in zip(auth, web, strict=False) for x in pair] + auth[len(web) :]:
            assert st.process(b) is b  # pass-through, the very same batch
        st.flush()
        bodies = r.bodies()
        m = st.metrics
    assert len(bodies) == 1
    [body] = bodies
    assert body["key"] == AUTH and body["labels"] == {"app": "auth"}
    assert body["detector"] == "pairs"
    assert (int(body["window"]["start_ns"]), int(body["window"]["end_ns"])) == (
        (T0 + 120) * S,
        (T0 + 180) * S,
    )
    assert body["edges"] == [
        {
            "source": "user:alice",
            "target": "ip:203.0.113.7",
            "kind": "co-occurs",
            "score": 1.0,
            "count": 1,
        }
    ]
    assert body["window"]["events"] == 31  # 30 logins every 2 s, plus the planted one
    assert body["url"].startswith("http://logpipe.test:3100/loki/api/v1/query_range?")
    assert sample(m, "logpipe_detect_windows_scored_total") == 10  # 5 windows x 2 streams
    assert sample(m, "logpipe_detect_anomalies_total") == 1
    assert sample(m, "logpipe_detect_events_total") == 301
    assert sample(m, "logpipe_alerts_sent_total", sink="webhook") == 1
    assert sample(m, "logpipe_detect_score_seconds_count") >= 1


def test_windows_close_online_without_a_flush() -> None:
    """Event time closes the anomalous window as soon as its stream is idle_secs (the
    allowed lateness, 30 s here) past its end."""
    rows = traffic(AUTH, 200, planted_at=30)  # planted in [T0, T0+60)
    before_close = [r for r in rows if r[0] < (T0 + 90) * S]
    with receiver() as r, stage([WebhookSink(r.url, retry=FAST)]) as st:
        for b in batches(before_close, AUTH):
            st.process(b)
        time.sleep(0.2)
        assert r.posts == []  # the window is still open: no alert yet
        st.process(batches([((T0 + 90) * S, b"login ok user=bob ip=10.0.0.2")], AUTH)[0])
        [post] = r.wait_for(1, timeout_s=5)
        assert int(post.json()["window"]["start_ns"]) == T0 * S
        assert len(st.windows) == 1  # the next window is open


def test_a_quiet_stream_closes_by_the_wall_clock() -> None:
    clock = [100.0]
    with receiver() as r:
        st = DetectStage(
            PairDetector(set(USERS)),
            [WebhookSink(r.url, retry=FAST)],
            DetectSettings(window_secs=60, idle_secs=5, tick_secs=0.01),
            metrics=DetectMetrics(),
            clock=lambda: clock[0],
        )
        try:
            st.process(batches(traffic(AUTH, 10, planted_at=4), AUTH)[0])  # window [T0, T0+60)
            time.sleep(0.1)
            assert r.posts == []
            clock[0] = 100.0 + 60 + 5  # past the window's end plus the grace, by the wall clock
            [post] = r.wait_for(1, timeout_s=5)
            assert post.json()["edges"][0]["target"] == "ip:203.0.113.7"
        finally:
            st.close()


def test_lines_from_a_clock_far_ahead_are_counted_not_windowed() -> None:
    now = (T0 + 100) * S
    rows = [*traffic(AUTH, 20), (now + 3600 * S, b"login ok user=bob ip=10.0.0.2 (ahead)")]
    with stage([], now_ns=now) as st:
        for b in batches(sorted(rows), AUTH):
            st.process(b)
        st.flush()
        m = st.metrics
    assert sample(m, "logpipe_detect_dropped_events_total", reason="future_timestamp") == 1
    assert sample(m, "logpipe_detect_events_total") == 10
    assert sample(m, "logpipe_detect_windows_scored_total") == 1


def test_bounds_are_enforced_and_counted() -> None:
    rows = traffic(AUTH, 60, every_s=1, planted_at=0)  # 61 events in one window
    streams = [batches(traffic(f'{{app="s{i}"}}', 4), f'{{app="s{i}"}}')[0] for i in range(3)]
    with (
        receiver() as r,
        stage([WebhookSink(r.url, retry=FAST)], max_events_per_window=10, max_open_windows=2) as st,
    ):
        for b in streams:  # three streams with room for two windows: s0 goes
            st.process(b)
        for b in batches(rows, AUTH):  # and s1 makes room for auth
            st.process(b)
        st.flush()
        m = st.metrics
        [body] = r.bodies()
    assert sample(m, "logpipe_detect_dropped_events_total", reason="window_full") == 51
    assert body["window"]["events"] == 10 and body["window"]["dropped_events"] == 51
    assert sample(m, "logpipe_detect_dropped_windows_total", reason="max_open_windows") == 2
    assert sample(m, "logpipe_detect_dropped_events_total", reason="window_evicted") == 4
    assert sample(m, "logpipe_detect_windows_scored_total") == 2


def test_sessions_alert_on_the_session_with_the_wrong_relation() -> None:
    rows: list[tuple[int, bytes]] = []
    for blk in range(5):
        user, ip = PLANTED if blk == 3 else USERS[blk % 3]
        for step in range(4):
            rows.append(
                ((T0 + blk * 2 + step) * S, f"blk_{blk} step {step} user={user} ip={ip}".encode())
            )
    rows.sort()
    with receiver() as r:
        manager = AlertmanagerSink(r.url, retry=FAST)
        with stage([manager], window_secs=None, session_key=r"blk_\d+", idle_secs=60) as st:
            for b in batches(rows, AUTH, size=7):
                st.process(b)
            st.flush()
        [post] = r.posts
    [alert] = post.json()
    assert alert["labels"]["session"] == "blk_3" and alert["labels"]["app"] == "auth"
    assert (
        "user:alice -[co-occurs]-> ip:203.0.113.7 (score 1, count 4)"
        in (alert["annotations"]["description"])
    )
    assert "%7C%3D+%22blk_3%22" in alert["generatorURL"]  # |= "blk_3"


class Exploding:
    """Fails on the first batch of windows, then scores like PairDetector."""

    name = "exploding"
    threshold = 0.5

    def __init__(self) -> None:
        self.inner = PairDetector(set(USERS))
        self.calls = 0

    def fit(self, windows: Sequence[Window]) -> None:
        del windows

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        return self.inner.score(windows)

    def explain(self, windows: Sequence[Window], top_k: int = 5) -> list[WindowScore]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("CUDA out of memory")
        return self.inner.explain(windows, top_k)


def test_failures_are_counted_and_never_stop_the_stream() -> None:
    """A detector that raises, a receiver that is down, one answering 500, a batch that
    is not a LogBatch: each is counted, and every batch still comes back unchanged."""
    down = WebhookSink(f"http://127.0.0.1:{closed_port()}/", name="down", retry=FAST)
    with receiver([500]) as failing, receiver() as ok:
        sinks = [
            down,
            AlertmanagerSink(failing.url, name="am", retry=FAST),
            WebhookSink(ok.url, name="ok", retry=FAST),
        ]
        with stage(sinks, detector=Exploding()) as st:
            first = batches(traffic(AUTH, 10, planted_at=2), AUTH)[0]
            assert st.process(first) is first
            st.flush()  # its window fails to score
            not_a_logbatch = pa.record_batch({"x": [1, 2]})
            assert st.process(not_a_logbatch) is not_a_logbatch
            for b in batches(traffic(AUTH, 300, planted_at=200), AUTH):
                assert st.process(b) is b
            st.flush()
            m = st.metrics
            assert len(ok.bodies()) == 1  # the healthy sink got the alert
            assert len(failing.posts) == 2  # tried twice (max_attempts), then gave up
    assert sample(m, "logpipe_detect_dropped_windows_total", reason="score_error") == 1
    assert sample(m, "logpipe_detect_errors_total", step="score") == 1
    assert sample(m, "logpipe_detect_errors_total", step="convert") == 1
    assert sample(m, "logpipe_alert_send_failures_total", sink="down", reason="connection") == 1
    assert sample(m, "logpipe_alert_send_failures_total", sink="am", reason="http_5xx") == 1
    assert sample(m, "logpipe_alerts_sent_total", sink="ok") == 1
    # the first window [T0, T0+60) was closed by the first flush: the second run's lines
    # of that minute are late, the other four windows are scored
    assert sample(m, "logpipe_detect_dropped_events_total", reason="late") == 30
    assert sample(m, "logpipe_detect_windows_scored_total") == 4


def test_a_slow_detector_never_holds_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring runs on its own thread behind a bounded queue: when it falls behind,
    windows are dropped (counted) and ``process`` stays fast."""

    class Slow(PairDetector):
        def explain(self, windows: Sequence[Window], top_k: int = 5) -> list[WindowScore]:
            time.sleep(0.3)
            return super().explain(windows, top_k)

    rows = traffic(AUTH, 600, every_s=10)  # 10 windows of 6 events
    with stage([], detector=Slow(set(USERS)), queue_windows=2, score_batch_windows=1) as st:
        started = time.monotonic()
        for b in batches(rows, AUTH, size=6):
            st.process(b)
        assert time.monotonic() - started < 0.25  # far less than one explain call
        m = st.metrics
    full = sample(m, "logpipe_detect_dropped_windows_total", reason="queue_full")
    shutdown = sample(m, "logpipe_detect_dropped_windows_total", reason="shutdown")
    scored = sample(m, "logpipe_detect_windows_scored_total")
    assert full >= 5 and scored + full + shutdown == 10


def test_receiver_fixture_is_a_real_server() -> None:
    r = Receiver()
    assert r.url.startswith("http://127.0.0.1:")
    r.server.server_close()
