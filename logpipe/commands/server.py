"""``logpipe server``: serve Loki's HTTP API over a log store (Grafana, logcli, Promtail)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["register"]

_HELP = """Serve Loki's HTTP API over the log store in DIR.

Grafana's Loki data source and logcli work unchanged against it; Promtail, Alloy and other
Loki clients can push to /loki/api/v1/push (JSON or protobuf+snappy). Tenants come from the
X-Scope-OrgID header (default: fake). /metrics serves Prometheus metrics, /ready readiness,
/openapi.json the API schema, and POST /api/v1/ask answers questions in plain English
(docs/ASK.md). Stop with Ctrl-C (in-flight requests finish first).

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
    @click.option("--ask-examples", type=click.Path(exists=True, dir_okay=False,
                  path_type=Path), help="JSONL of solved examples for /api/v1/ask.")  # fmt: skip
    @click.option("--ask-adapter", type=click.Path(exists=True, file_okay=False,
                  path_type=Path), help="LoRA adapter for /api/v1/ask's model.")  # fmt: skip
    def server(store_dir: Path, host: str, port: int, log_level: str,  # noqa: PLR0917
               ask_examples: Path | None, ask_adapter: Path | None) -> None:  # fmt: skip
        from logpipe.logql.engine import Engine  # noqa: PLC0415
        from logpipe.nl.ask import Asker  # noqa: PLC0415
        from logpipe.nl.backends import find_adapter  # noqa: PLC0415
        from logpipe.nl.data import read_pairs  # noqa: PLC0415
        from logpipe.server.app import create_app  # noqa: PLC0415 - FastAPI only when serving
        from logpipe.server.runner import serve  # noqa: PLC0415
        from logpipe.store import Store  # noqa: PLC0415

        store_dir.mkdir(parents=True, exist_ok=True)
        store = Store(store_dir)
        engine = Engine(store)
        examples = read_pairs(ask_examples).pairs if ask_examples is not None else []
        asker = Asker(store, engine, examples=examples, adapter=find_adapter(ask_adapter))
        serve(create_app(store, engine=engine, asker=asker), host, port, log_level=log_level)
