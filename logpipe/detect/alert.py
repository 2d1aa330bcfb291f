"""What an alert about an anomalous window says, and the JSON bodies the sinks send.

Why one :class:`Alert` record and pure body builders here (the sinks in
``logpipe.connectors.alerts`` only deliver bytes): the webhook, the Kafka topic and
Alertmanager must describe the same window the same way, and a test can check a body
without a socket.

**The alert JSON** (webhook POST body and Kafka message value; ``version`` changes only
when a field changes meaning or goes away, new fields may be added)::

    {
      "version": 1,
      "type": "logpipe.anomaly",
      "detector": "glad",
      "key": "{app=\\"auth\\"}",          # window key: stream labels, or the session id
      "labels": {"app": "auth"},         # the stream's labels
      "window": {"kind": "time",         # "time" (tumbling per stream) or "session"
                 "start": "2023-11-14T22:13:00Z", "end": "2023-11-14T22:14:00Z",
                 "start_ns": "1699999980000000000", "end_ns": "1700000040000000000",
                 "events": 120, "dropped_events": 0},
      "score": 3.2, "threshold": 1.0,    # null when the detector returned a non-finite value
      "edges": [{"source": "user:alice", "target": "ip:10.9.9.9", "kind": "co-occurs",
                 "score": 4.1, "count": 3}],
      "summary": "anomalous log window {app=\\"auth\\"}: score 3.2 > threshold 1",
      "query": "{app=\\"auth\\"}",          # LogQL selecting the window's lines
      "url": "http://logpipe:3100/loki/api/v1/query_range?query=...&start=...&end=..."
    }

Times in ``*_ns`` are strings (as in Loki's API): nanosecond times do not fit a JSON
number that JavaScript reads exactly. ``end`` is exclusive, as in Loki's ``query_range``.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from logpipe.detect.windows import EdgeExplanation, WindowScore
from logpipe.labels import LABEL_NAME, format_labels
from logpipe.quoting import go_quote
from logpipe.timefmt import rfc3339

__all__ = [
    "ALERT_VERSION",
    "Alert",
    "AlertSink",
    "WindowKind",
    "alertmanager_alert",
    "describe_edges",
    "query_url",
    "webhook_body",
    "window_query",
]

ALERT_VERSION = 1

WindowKind = Literal["time", "session"]

#: Lines a query link asks for: enough to see a whole bounded window (max events per
#: window is 2,000 by default), within Loki's default max_entries_limit_per_query.
_QUERY_LIMIT = 5000

#: Label names an Alertmanager alert sets itself; a stream label with one of these names
#: is sent as ``stream_<name>`` instead of overwriting it.
_RESERVED = ("alertname", "severity", "detector", "session")


@dataclass(frozen=True, slots=True)
class Alert:
    """One anomalous window, with what a person needs to look at it."""

    score: WindowScore
    detector: str
    kind: WindowKind
    labels: Mapping[str, str] = field(default_factory=dict)
    events: int = 0
    dropped: int = 0
    query: str = ""
    url: str = ""

    @property
    def key(self) -> str:
        return self.score.key

    def summary(self) -> str:
        s = self.score
        return (
            f"anomalous log window {s.key}: score {_fmt(s.score)} > threshold {_fmt(s.threshold)}"
        )


class AlertSink(Protocol):
    """Where alerts go (``logpipe.connectors.alerts``); driven by one dispatcher thread.

    ``send`` delivers a batch of at most ``max_batch`` alerts, retrying inside with a
    bounded number of attempts and backoff, and returns the attempts it used; when it
    gives up it raises :class:`~logpipe.errors.AlertDeliveryError`. ``cancel`` may be called
    from any thread and makes a send in progress give up soon (no more retries);
    ``close`` is called by the dispatcher thread after its last ``send``.
    """

    name: str
    max_batch: int

    def send(self, alerts: Sequence[Alert]) -> int: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _num(value: float) -> float | None:
    """JSON has no NaN or infinity: a non-finite score is sent as null."""
    return float(value) if math.isfinite(value) else None


def window_query(labels: Mapping[str, str], kind: WindowKind, key: str) -> str:
    """LogQL selecting a window's lines: the stream selector, plus a line filter on the
    session id for session windows. Empty when the stream has no labels (LogQL needs a
    non-empty matcher), so no link is made rather than a wrong one."""
    if not labels:
        return ""
    selector = format_labels(labels)
    return f"{selector} |= {go_quote(key)}" if kind == "session" else selector


def query_url(api_url: str, query: str, start_ns: int, end_ns: int) -> str:
    """A ``query_range`` link on our Loki-compatible API for ``[start_ns, end_ns)``."""
    if not api_url or not query:
        return ""
    params = {
        "query": query,
        "start": str(start_ns),
        "end": str(end_ns),
        "direction": "forward",
        "limit": str(_QUERY_LIMIT),
    }
    return f"{api_url.rstrip('/')}/loki/api/v1/query_range?{urllib.parse.urlencode(params)}"


def describe_edges(edges: Sequence[EdgeExplanation]) -> str:
    """The explanation as text, one edge a line (Alertmanager's description)."""
    return "\n".join(
        f"{e.source} -[{e.kind}]-> {e.target} (score {_fmt(e.score)}, count {e.count})"
        for e in edges
    )


def _edge_json(edge: EdgeExplanation) -> dict[str, Any]:
    return {
        "source": edge.source,
        "target": edge.target,
        "kind": edge.kind,
        "score": _num(edge.score),
        "count": edge.count,
    }


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The alert JSON of the module docstring (webhook body, Kafka value)."""
    s = alert.score
    return {
        "version": ALERT_VERSION,
        "type": "logpipe.anomaly",
        "detector": alert.detector,
        "key": s.key,
        "labels": dict(alert.labels),
        "window": {
            "kind": alert.kind,
            "start": rfc3339(s.start_ns),
            "end": rfc3339(s.end_ns),
            "start_ns": str(s.start_ns),
            "end_ns": str(s.end_ns),
            "events": alert.events,
            "dropped_events": alert.dropped,
        },
        "score": _num(s.score),
        "threshold": _num(s.threshold),
        "edges": [_edge_json(e) for e in s.edges],
        "summary": alert.summary(),
        "query": alert.query,
        "url": alert.url,
    }


def alertmanager_alert(
    alert: Alert,
    *,
    alertname: str,
    severity: str,
    resolve_after_ns: int,
    now_ns: int,
) -> dict[str, Any]:
    """One element of the JSON list Alertmanager's ``POST /api/v2/alerts`` takes.

    Labels identify the alert (Alertmanager groups and deduplicates on them): the name,
    severity and detector, the stream's labels, and for a session window its id, so an
    anomaly that lasts several windows of one stream is one firing alert. ``endsAt`` is
    ``resolve_after_ns`` past the later of the window's end and now: an alert whose
    ``endsAt`` has passed counts as resolved, and a window's end is already past when it
    is scored.
    """
    s = alert.score
    labels = {"alertname": alertname, "severity": severity, "detector": alert.detector}
    if alert.kind == "session":
        labels["session"] = s.key
    for name, value in sorted(alert.labels.items()):
        out = f"stream_{name}" if name in _RESERVED else name
        if LABEL_NAME.fullmatch(out) and value:
            labels[out] = value
    description = (
        f"Window {rfc3339(s.start_ns)} to {rfc3339(s.end_ns)} ({alert.kind}, "
        f"{alert.events} events"
        + (f", {alert.dropped} beyond the per-window bound" if alert.dropped else "")
        + ")."
    )
    if s.edges:
        description += "\nMost anomalous edges:\n" + describe_edges(s.edges)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": alert.summary(),
            "description": description,
            "score": _fmt(s.score),
            "threshold": _fmt(s.threshold),
            "query": alert.query,
        },
        "startsAt": rfc3339(s.start_ns),
        "endsAt": rfc3339(max(s.end_ns, now_ns) + resolve_after_ns),
    }
    if alert.url:
        body["generatorURL"] = alert.url
    return body
