"""The Prometheus metrics of one API app, in a registry of its own.

Why a registry per app (not prometheus-client's global one): tests start several apps in one
process, and a daemon may serve more than one; module-level collectors would be global state
that double-registers or mixes their counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ServerMetrics"]

#: Query latency buckets: 5 ms to 1 min (Loki's query timeout is 1 min by default).
_QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class ServerMetrics:
    """Requests by route, method and status; query latency; pushed lines and bytes."""

    registry: CollectorRegistry
    requests: Counter
    query_seconds: Histogram
    pushed_lines: Counter
    pushed_bytes: Counter
    rejected_lines: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ServerMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=reg,
            requests=Counter(
                "logpipe_http_requests",
                "HTTP requests answered, by route template, method and status code.",
                ["route", "method", "status"],
                registry=reg,
            ),
            query_seconds=Histogram(
                "logpipe_query_duration_seconds",
                "Time to evaluate a LogQL query, by route.",
                ["route"],
                buckets=_QUERY_BUCKETS,
                registry=reg,
            ),
            pushed_lines=Counter(
                "logpipe_pushed_lines",
                "Log lines received in valid /loki/api/v1/push bodies, by tenant.",
                ["tenant"],
                registry=reg,
            ),
            pushed_bytes=Counter(
                "logpipe_pushed_bytes",
                "Bytes of log lines received in valid /loki/api/v1/push bodies, by tenant.",
                ["tenant"],
                registry=reg,
            ),
            rejected_lines=Counter(
                "logpipe_push_rejected_lines",
                "Pushed log lines the store refused (not stored), by tenant and reason.",
                ["tenant", "reason"],
                registry=reg,
            ),
        )
