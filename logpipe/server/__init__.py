"""Loki's HTTP API over the log store, so Grafana's Loki data source and logcli work unchanged.

Modules, one job each: ``params`` (Loki's query parameters: times, steps, limits),
``selectors`` (stream selectors out of a ``query``/``match[]`` parameter), ``protowire`` (a
minimal protobuf wire decoder), ``push`` (decoding push bodies: JSON and protobuf+snappy),
``metrics`` (Prometheus metrics of one app), ``app`` (the FastAPI routes), ``runner``
(running uvicorn, in the foreground or on a background thread) and ``client`` (a small Loki
HTTP client for ``logpipe query --addr``).

Why the names below are loaded lazily: ``logpipe query --store`` uses :mod:`.params` without
FastAPI, and CLI start-up time matters; ``import logpipe.server`` must not import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logpipe.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from logpipe.server.app import create_app  # noqa: PLC0415 - lazy: FastAPI is heavy

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
