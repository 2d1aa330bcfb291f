"""``logpipe query``: run LogQL on a local store or against a Loki-compatible server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from logpipe.commands.query_render import OUTPUTS, render
from logpipe.errors import UsageError

__all__ = ["register"]

_HELP = """Run a LogQL QUERY over a local store (--store) or a server (--addr).

Times (--from, --to) are unix seconds, unix nanoseconds or RFC3339, as in Loki's API; the
range defaults to the last --since (1h) before --to (now). Log queries print entries
(newest first with --direction backward); metric queries print samples every --step
(default: the range over 250 points). --output json prints exactly the API's response body.

\b
Examples:
  logpipe query '{app="api"} |= "error"' --store ./logs
  logpipe query 'sum by (level) (count_over_time({app="api"} [5m]))' --store ./logs --step 5m
  logpipe query '{app="api"}' --addr http://127.0.0.1:3100 --output jsonl --limit 1000
  logpipe query 'rate({app="api"}[1m])' --store ./logs --instant --output json
"""


def _local(store_dir: Path, query: str, params: dict[str, str | None], instant: bool,
           tenant: str) -> bytes:  # fmt: skip
    from logpipe.logql.engine import Engine  # noqa: PLC0415 - pyarrow only for local queries
    from logpipe.logql.results import to_loki_json  # noqa: PLC0415
    from logpipe.server.jsonbody import encode_body  # noqa: PLC0415
    from logpipe.server.params import Params, parse_instant, parse_range  # noqa: PLC0415
    from logpipe.store import Store, validate_tenant  # noqa: PLC0415

    engine = Engine(Store(store_dir))
    tenant = validate_tenant(tenant)
    values = Params({k: [v] for k, v in {"query": query, **params}.items() if v is not None})
    now = time.time_ns()
    if instant:
        ip = parse_instant(values, now)
        result = engine.query_instant(ip.query, time_ns=ip.time_ns, tenant=tenant,
                                      direction=ip.direction, limit=ip.limit)  # fmt: skip
    else:
        rp = parse_range(values, now)
        result = engine.query_range(rp.query, start_ns=rp.start_ns, end_ns=rp.end_ns,
                                    step_ns=rp.step_ns, tenant=tenant, direction=rp.direction,
                                    limit=rp.limit)  # fmt: skip
    return encode_body(to_loki_json(result, {}))


def register(app: click.Group) -> None:
    """Add the ``query`` command to ``app``."""

    @app.command("query", help=_HELP, no_args_is_help=True)
    @click.argument("query")
    @click.option("--store", "store_dir", type=click.Path(exists=True, file_okay=False,
                  path_type=Path), help="Query this local store directory.")  # fmt: skip
    @click.option("--addr", help="Query this server instead, e.g. http://127.0.0.1:3100.")
    @click.option("--since", help="Range before --to when --from is not given (default 1h).")
    @click.option("--from", "start", help="Start: unix s/ns or RFC3339.")
    @click.option("--to", "end", help="End (or the instant with --instant); default now.")
    @click.option("--step", help="Step of metric range queries: 15s, 5m or seconds.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
                  help="Maximum log entries.")  # fmt: skip
    @click.option("--direction", type=click.Choice(["backward", "forward"]), default="backward",
                  show_default=True, help="backward: newest first.")  # fmt: skip
    @click.option("--instant", is_flag=True, help="An instant query at --to (default now).")
    @click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table",
                  show_default=True, help="How to print the result.")  # fmt: skip
    @click.option("--tenant", default="fake", show_default=True, help="Tenant id.")
    def query(  # noqa: PLR0917 - click maps each parameter to a flag
        query: str,
        store_dir: Path | None,
        addr: str | None,
        since: str | None,
        start: str | None,
        end: str | None,
        step: str | None,
        limit: int,
        direction: str,
        instant: bool,
        output: str,
        tenant: str,
    ) -> None:
        if (store_dir is None) == (addr is None):
            raise UsageError("give either --store DIR or --addr URL")
        if instant:
            params: dict[str, str | None] = {"time": end or start, "limit": str(limit),
                                             "direction": direction}  # fmt: skip
        else:
            params = {"start": start, "end": end, "since": since, "step": step,
                      "limit": str(limit), "direction": direction}  # fmt: skip
        if addr is not None:
            from logpipe.server.client import get  # noqa: PLC0415

            path = "/loki/api/v1/query" if instant else "/loki/api/v1/query_range"
            raw = get(addr, path, {"query": query, **params}, tenant=tenant)
        else:
            assert store_dir is not None
            raw = _local(store_dir, query, params, instant, tenant)
        if output == "json":
            sys.stdout.buffer.write(raw + b"\n")
            sys.stdout.buffer.flush()
            return
        render(json.loads(raw), output, sys.stdout, direction=direction)
