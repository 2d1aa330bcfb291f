"""``logpipe server``: serve Loki's HTTP API over a log store (Grafana, logcli, Promtail)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["register"]

_HELP = """Serve Loki's HTTP API over the log store in DIR.

Grafana's Loki data source and logcli work unchanged against it; Promtail, Alloy and other
Loki clients can push to /loki/api/v1/push (JSON or protobuf+snappy). Tenants come from the
X-Scope-OrgID header (default: fake). /metrics serves Prometheus metrics, /ready readiness,
/openapi.json the API schema. Stop with Ctrl-C (in-flight requests finish first).

\b
Examples:
  logpipe server --store ./logs
  logpipe server --store ./logs --host 0.0.0.0 --port 3100
  curl -G localhost:3100/loki/api/v1/query_range --data-urlencode 'query={app="api"}'
"""


def register(app: click.Group) -> None:
    """Add the ``server`` command to ``app``."""

    @app.command("server", help=_HELP)
    @click.option("--store", "store_dir", required=True,
                  type=click.Path(file_okay=False, path_type=Path),
                  help="Store directory (created when missing).")  # fmt: skip
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on (0.0.0.0: every interface).")  # fmt: skip
    @click.option("--port", type=click.IntRange(0, 65535), default=3100, show_default=True,
                  help="TCP port (Loki's is 3100).")  # fmt: skip
    @click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                  default="info", show_default=True, help="uvicorn's log level.")  # fmt: skip
    def server(store_dir: Path, host: str, port: int, log_level: str) -> None:
        from logpipe.server.app import create_app  # noqa: PLC0415 - FastAPI only when serving
        from logpipe.server.runner import serve  # noqa: PLC0415
        from logpipe.store import Store  # noqa: PLC0415

        store_dir.mkdir(parents=True, exist_ok=True)
        serve(create_app(Store(store_dir)), host, port, log_level=log_level)
