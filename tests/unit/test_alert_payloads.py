"""What alerts say: the alert JSON, Alertmanager's alert, the LogQL link (pure functions)."""

from __future__ import annotations

import json
import urllib.parse

from logpipe.detect.alert import Alert, alertmanager_alert, query_url, webhook_body, window_query
from logpipe.detect.windows import EdgeExplanation, WindowScore
from logpipe.logql import parse_query
from logpipe.timefmt import rfc3339

S = 1_000_000_000
START, END = 1_700_000_040 * S, 1_700_000_100 * S
EDGES = (
    EdgeExplanation("user:mallory", "ip:10.9.9.9", "co-occurs", 4.25, 3),
    EdgeExplanation("template:login ok", "template:sudo <*>", "follows", 2.5, 1),
)
API = "http://logpipe.example:3100"


def alert(
    labels: dict[str, str] | None = None, kind: str = "time", key: str = '{app="auth"}'
) -> Alert:
    labels = {"app": "auth", "env": "prod"} if labels is None else labels
    score = WindowScore(key, START, END, 3.5, 1.0, True, EDGES)
    query = window_query(labels, "session" if kind == "session" else "time", key)
    return Alert(
        score,
        "glad",
        "session" if kind == "session" else "time",
        labels,
        events=40,
        dropped=2,
        query=query,
        url=query_url(API, query, START, END),
    )


def test_webhook_body_documents_the_window_and_its_edges() -> None:
    body = webhook_body(alert())
    assert body["version"] == 1 and body["type"] == "logpipe.anomaly"
    assert body["detector"] == "glad" and body["key"] == '{app="auth"}'
    assert body["labels"] == {"app": "auth", "env": "prod"}
    assert body["window"] == {
        "kind": "time",
        "start": "2023-11-14T22:14:00Z",
        "end": "2023-11-14T22:15:00Z",
        "start_ns": str(START),
        "end_ns": str(END),
        "events": 40,
        "dropped_events": 2,
    }
    assert (body["score"], body["threshold"]) == (3.5, 1.0)
    assert body["edges"][0] == {
        "source": "user:mallory",
        "target": "ip:10.9.9.9",
        "kind": "co-occurs",
        "score": 4.25,
        "count": 3,
    }
    assert [e["kind"] for e in body["edges"]] == ["co-occurs", "follows"]
    assert "3.5 > threshold 1" in body["summary"]
    json.dumps(body, allow_nan=False)  # strict JSON


def test_the_link_is_a_valid_logql_range_query_on_our_api() -> None:
    body = webhook_body(alert())
    url = urllib.parse.urlsplit(body["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{API}/loki/api/v1/query_range"
    params = dict(urllib.parse.parse_qsl(url.query))
    assert params["query"] == body["query"] == '{app="auth", env="prod"}'
    assert (params["start"], params["end"]) == (str(START), str(END))
    parse_query(params["query"])  # our own LogQL parser accepts it


def test_session_windows_filter_on_their_key() -> None:
    a = alert(kind="session", key='blk_-42"x')
    assert a.query == '{app="auth", env="prod"} |= "blk_-42\\"x"'
    parse_query(a.query)


def test_no_labels_no_link() -> None:
    a = alert(labels={})
    assert a.query == "" and a.url == ""
    assert "generatorURL" not in alertmanager_alert(
        a, alertname="LogAnomaly", severity="warning", resolve_after_ns=0, now_ns=0
    )


def test_non_finite_scores_are_null() -> None:
    a = alert()
    nan = WindowScore("k", START, END, float("nan"), float("inf"), True, ())
    body = webhook_body(Alert(nan, "glad", "time", a.labels))
    assert body["score"] is None and body["threshold"] is None
    json.dumps(body, allow_nan=False)


def test_alertmanager_alert() -> None:
    now = END + 5 * S
    a = alert(labels={"app": "auth", "severity": "debug"})
    am = alertmanager_alert(
        a, alertname="LogAnomaly", severity="critical", resolve_after_ns=300 * S, now_ns=now
    )
    assert am["labels"] == {
        "alertname": "LogAnomaly",
        "severity": "critical",
        "detector": "glad",
        "app": "auth",
        "stream_severity": "debug",
    }
    assert am["startsAt"] == rfc3339(START) == "2023-11-14T22:14:00Z"
    assert am["endsAt"] == rfc3339(now + 300 * S)  # still firing when it arrives
    assert am["generatorURL"] == a.url
    desc = am["annotations"]["description"]
    assert "user:mallory -[co-occurs]-> ip:10.9.9.9 (score 4.25, count 3)" in desc
    assert "template:login ok -[follows]-> template:sudo <*>" in desc
    assert "2 beyond the per-window bound" in desc
    assert am["annotations"]["summary"] == a.summary()


def test_alertmanager_session_label_keeps_sessions_apart() -> None:
    am = alertmanager_alert(
        alert(kind="session", key="blk_7"),
        alertname="A",
        severity="s",
        resolve_after_ns=0,
        now_ns=0,
    )
    assert am["labels"]["session"] == "blk_7"
