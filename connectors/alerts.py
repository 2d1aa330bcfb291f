"""Alert sinks: a generic webhook, Alertmanager, and a Kafka topic.

Each sink delivers bytes and nothing else; what an alert says is built by
:mod:`logpipe.detect.alert` (the alert JSON is documented there), and a dispatcher thread
per sink (:mod:`logpipe.detect.dispatch`) feeds it, so a slow or dead receiver delays only
its own alerts, never the pipeline or the archive.

Delivery is bounded: every HTTP attempt has a timeout, failures that may pass (connection
refused or reset, a timeout, HTTP 5xx, 408 and 429) are retried up to ``max_attempts``
times with exponential backoff, other statuses (400, 401, 404...) are not retried, and
the last failure is raised as :class:`~logpipe.errors.AlertDeliveryError` with a reason
the dispatcher counts in ``logpipe_alert_send_failures_total``. HTTP uses only the
standard library (``urllib``); Kafka uses kafka-python, already a dependency.

=============== =========================================================================
sink            what it sends
=============== =========================================================================
webhook         one ``POST`` per alert, body = the alert JSON, ``Content-Type:
                application/json``, plus configured headers (an ``Authorization`` token)
alertmanager    ``POST <url>/api/v2/alerts`` with a JSON list of up to 64 alerts in
                Alertmanager's format (labels, annotations, startsAt, endsAt,
                generatorURL)
kafka           one record per alert on a topic: value = the alert JSON, key = the window
                key (stream labels or session id, so one stream's alerts stay in order)
=============== =========================================================================
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logpipe import __version__
from logpipe.detect.alert import Alert, alertmanager_alert, webhook_body
from logpipe.errors import AlertDeliveryError

__all__ = [
    "AlertmanagerSink",
    "HttpPoster",
    "KafkaAlertSink",
    "RetryPolicy",
    "WebhookSink",
    "alert_json",
]

log = logging.getLogger(__name__)

#: Statuses worth another try: the receiver is overloaded or restarting.
_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery tries: ``max_attempts`` tries, each bounded by ``timeout_s``,
    waiting ``backoff_s``, then twice that, ... (at most ``max_backoff_s``) in between.

    The worst case for one delivery is ``max_attempts * timeout_s`` plus the waits."""

    timeout_s: float = 5.0
    max_attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_attempts < 1 or self.backoff_s < 0:
            raise ValueError("timeout_s > 0, max_attempts >= 1 and backoff_s >= 0 are required")

    def wait_s(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))


def alert_json(alert: Alert) -> bytes:
    """The alert JSON (:func:`~logpipe.detect.alert.webhook_body`) as UTF-8 bytes."""
    return json.dumps(webhook_body(alert), ensure_ascii=False, allow_nan=False).encode()


class HttpPoster:
    """POSTs JSON bodies to one URL with the retry policy of the module docstring."""

    def __init__(
        self,
        sink: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alert sink {sink}: url must start with http:// or https://: {url}")
        self.sink = sink
        self.url = url
        self.retry = retry or RetryPolicy()
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": f"logpipe/{__version__}",
            **dict(headers or {}),
        }
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop retrying (a request in flight still ends within its timeout)."""
        self._cancelled.set()

    def post(self, body: bytes) -> int:
        """Deliver ``body``; the attempts used, or AlertDeliveryError after the last one."""
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            reason, detail, retryable = self._attempt(body)
            if reason is None:
                return attempt
            if not retryable or attempt >= policy.max_attempts:
                raise AlertDeliveryError(self.sink, reason, detail, attempts=attempt)
            if self._cancelled.wait(policy.wait_s(attempt)):
                raise AlertDeliveryError(self.sink, "cancelled", detail, attempts=attempt)

    def _attempt(self, body: bytes) -> tuple[str | None, str, bool]:
        """(failure reason or None, detail, retryable) of one POST."""
        request = urllib.request.Request(self.url, data=body, method="POST", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            retryable = status >= 500 or status in _RETRY_STATUSES
            return (
                f"http_{status // 100}xx",
                f"{self.url} answered {status} {exc.reason}",
                retryable,
            )
        except TimeoutError as exc:
            return "timeout", f"{self.url}: no answer within {self.retry.timeout_s} s ({exc})", True
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return "timeout", f"{self.url}: no answer within {self.retry.timeout_s} s", True
            return "connection", f"{self.url}: {exc.reason}", True
        except (OSError, http.client.HTTPException) as exc:
            return "connection", f"{self.url}: {exc!r}", True
        return None, "", False


class WebhookSink:
    """A generic webhook: one POST of the alert JSON per alert."""

    max_batch = 1

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self._poster = HttpPoster(name, url, headers=headers, retry=retry)

    def send(self, alerts: Sequence[Alert]) -> int:
        attempts = 0
        for alert in alerts:
            attempts += self._poster.post(alert_json(alert))
        return attempts

    def cancel(self) -> None:
        self._poster.cancel()

    def close(self) -> None:
        """No connection is kept between alerts."""


class AlertmanagerSink:
    """Prometheus Alertmanager (or anything speaking its v2 API: Grafana, Mimir's, Karma):
    ``POST <url>/api/v2/alerts`` with a list of alerts."""

    max_batch = 64

    def __init__(
        self,
        url: str,
        *,
        name: str = "alertmanager",
        alertname: str = "LogAnomaly",
        severity: str = "warning",
        resolve_after_s: float = 300.0,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.alertname = alertname
        self.severity = severity
        self.resolve_after_ns = int(resolve_after_s * 1e9)
        endpoint = url.rstrip("/")
        if not endpoint.endswith("/api/v2/alerts"):
            endpoint += "/api/v2/alerts"
        self._poster = HttpPoster(name, endpoint, headers=headers, retry=retry)

    @property
    def url(self) -> str:
        return self._poster.url

    def body(self, alerts: Sequence[Alert], now_ns: int) -> bytes:
        """The JSON list for ``alerts`` (public for tests and ``--dry-run`` style tools)."""
        items = [
            alertmanager_alert(
                a,
                alertname=self.alertname,
                severity=self.severity,
                resolve_after_ns=self.resolve_after_ns,
                now_ns=now_ns,
            )
            for a in alerts
        ]
        return json.dumps(items, ensure_ascii=False).encode()

    def send(self, alerts: Sequence[Alert]) -> int:
        return self._poster.post(self.body(alerts, time.time_ns()))

    def cancel(self) -> None:
        self._poster.cancel()

    def close(self) -> None:
        """No connection is kept between posts."""


class KafkaAlertSink:
    """Alerts as records on a Kafka topic (value: alert JSON, key: the window key).

    The producer is created on the first send, on the dispatcher's thread, so a broker
    that is down when the daemon starts costs failed deliveries (counted), not a daemon
    that does not start. kafka-python retries inside; ``retry.timeout_s`` bounds how long
    a send may block on the broker.
    """

    max_batch = 256

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        *,
        name: str = "kafka-alerts",
        retry: RetryPolicy | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.topic = topic
        self.retry = retry or RetryPolicy(timeout_s=10.0)
        timeout_ms = int(self.retry.timeout_s * 1000)
        self._settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "acks": "all",
            "linger_ms": 5,
            "retries": self.retry.max_attempts - 1,
            "retry_backoff_ms": int(self.retry.backoff_s * 1000),
            "request_timeout_ms": timeout_ms,
            "max_block_ms": timeout_ms,
            "bootstrap_timeout_ms": timeout_ms,  # else a dead broker holds the first send 30 s
            "delivery_timeout_ms": timeout_ms * self.retry.max_attempts + 5,
            "client_id": f"logpipe-{name}",
            **dict(options or {}),
        }
        self._producer: Any = None
        self._cancelled = threading.Event()

    def _any_broker_reachable(self) -> bool:
        """A plain TCP connect to each bootstrap server, closed at once.

        Why: kafka-python 3.0.12 leaves the socket of a refused bootstrap connect open
        (until garbage collection), so a broker that stays down would leak sockets on
        every alert; probing first keeps that case to sockets we close ourselves."""
        servers = self._settings["bootstrap_servers"]
        for server in servers.split(",") if isinstance(servers, str) else servers:
            host, _, port = server.strip().rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)),
                                         timeout=self.retry.timeout_s).close()  # fmt: skip
            except (OSError, ValueError):
                continue
            return True
        return False

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            if not self._any_broker_reachable():
                raise AlertDeliveryError(
                    self.name,
                    "kafka",
                    f"no bootstrap server of {self._settings['bootstrap_servers']} "
                    "accepts connections",
                )
            from kafka import KafkaProducer  # noqa: PLC0415 - only when this sink is used
            from kafka.net.compat import KafkaNetClient  # noqa: PLC0415

            clients: list[Any] = []

            def client(**configs: Any) -> Any:
                clients.append(KafkaNetClient(**configs))
                return clients[-1]

            try:
                self._producer = KafkaProducer(**self._settings, kafka_client=client)
            except BaseException:
                # a producer that cannot bootstrap raises from its constructor and leaves
                # its client's sockets open; close them, or each retry leaks a few
                for c in clients:
                    c.close()
                raise
        return self._producer

    def send(self, alerts: Sequence[Alert]) -> int:
        from kafka.errors import KafkaError  # noqa: PLC0415

        if self._cancelled.is_set():
            raise AlertDeliveryError(self.name, "cancelled", "the sink is closing")
        try:
            producer = self._ensure_producer()
            futures = [
                producer.send(self.topic, value=alert_json(a), key=a.key.encode()) for a in alerts
            ]
            producer.flush(timeout=self.retry.timeout_s)
            for future in futures:
                future.get(timeout=self.retry.timeout_s)
        except (KafkaError, OSError) as exc:
            raise AlertDeliveryError(self.name, "kafka", f"topic {self.topic}: {exc!r}") from exc
        return 1

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self.retry.timeout_s)
            self._producer = None
