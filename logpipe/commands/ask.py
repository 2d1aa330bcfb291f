"""``logpipe ask``: a question about the logs in plain English, answered with LogQL.

Over a local store (``--store``) the question is answered in this process
(:class:`logpipe.nl.ask.Asker`); over a server (``--addr``) by its ``POST /api/v1/ask``. Both
give the same JSON body, which one renderer prints: the query, a one-line explanation
written from the query's syntax tree, the backend that wrote it, and the result table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import click

from logpipe.errors import UsageError

__all__ = ["register", "render_answer"]

_HELP = """Answer QUESTION about the logs of a local store (--store) or a server (--addr).

The question becomes one LogQL query: written by the fine-tuned language model when its
adapter is found, else by retrieval of the nearest examples (--backend chooses), parsed,
validated and repaired by logpipe's LogQL parser before anything runs; a question no
candidate answers gets "cannot answer" and the closest known query (exit code 1). The
query, a one-line explanation and the result are printed; log queries read the last
--since (default 1h) before --to (default now), metric queries run at --to.

\b
Examples:
  logpipe ask "how many failed logins per host in the last hour?" --store ./logs
  logpipe ask "show the error lines of api" --store ./logs --since 6h --explain
  logpipe ask "which users failed most?" --addr http://127.0.0.1:3100 --json
  logpipe ask "rate of 500s" --store ./logs --dry-run --backend model --candidates 2
"""


def _row(out: TextIO, name: str, value: str) -> None:
    out.write(f"{name:<9} {value}\n")


def _explain_details(body: dict[str, Any], out: TextIO) -> None:
    context = body.get("context") or {}
    out.write("\ncontext given to the backend:\n")
    for name, values in (context.get("labels") or {}).items():
        out.write(f"  label {name}: {', '.join(values)}\n")
    for template in context.get("templates") or []:
        out.write(f"  template: {template}\n")
    for example in context.get("examples") or []:
        out.write(f"  example: {example['question']}\n           -> {example['query']}\n")
    out.write(f"  ({context.get('examples_known', 0)} examples known for this store)\n")
    out.write("candidates:\n")
    for i, c in enumerate(body.get("candidates") or [], start=1):
        raw = " ".join(str(c.get("raw", "")).split())
        out.write(f"  {i}. {raw[:160]}{'...' if len(raw) > 160 else ''}\n")
        if c.get("query"):
            fixes = f" (repaired: {'; '.join(c['repairs'])})" if c.get("repairs") else ""
            out.write(f"     valid{fixes}, {c['votes']} vote(s): {c['query']}\n")
            if c.get("executed"):
                state = c.get("execution_error") or ("has data" if c.get("has_data") else
                                                     "no data")  # fmt: skip
                out.write(f"     executed: {state}\n")
        else:
            out.write(f"     rejected: {c.get('error')}\n")
    timings = body.get("timings") or {}
    if timings:
        out.write("timings: " + ", ".join(f"{k} {v:.3f}" for k, v in timings.items()) + "\n")


def render_answer(body: dict[str, Any], out: TextIO, *, explain: bool = False) -> None:
    """Print an ask body for people: query, explanation, backend, result table."""
    from logpipe.commands.query_render import render  # noqa: PLC0415

    _row(out, "backend", f"{body['backend']}: {body.get('backend_note', '')}")
    if body["status"] == "answered":
        _row(out, "query", body["query"])
        _row(out, "meaning", body["explanation"])
        if "result" in body:
            out.write("\n")
            render(body["result"], "table", out)
        else:
            out.write("(dry run: not executed)\n")
    else:
        _row(out, "answer", f"cannot answer: {body['explanation']}")
        closest = body.get("closest_query")
        if closest:
            _row(out, "closest", f"{closest}  (a known query, not run: check it first)")
    if explain:
        _explain_details(body, out)
    out.write(f"({body['seconds']:.2f} s)\n")


def _local(
    store_dir: Path, request: dict[str, Any], adapter: Path | None, examples: Path | None
) -> dict[str, Any]:
    from logpipe.logql.engine import Engine  # noqa: PLC0415 - pyarrow only when used
    from logpipe.models.nl2logql.loader import default_cache_root  # noqa: PLC0415
    from logpipe.nl.ask import Asker  # noqa: PLC0415
    from logpipe.nl.backends import find_adapter  # noqa: PLC0415
    from logpipe.nl.data import read_pairs  # noqa: PLC0415
    from logpipe.nl.storeschema import TemplateCache  # noqa: PLC0415
    from logpipe.server.ask import parse_ask_body  # noqa: PLC0415
    from logpipe.store import Store, validate_tenant  # noqa: PLC0415

    tenant = validate_tenant(request.pop("tenant"))
    asked, details = parse_ask_body(json.dumps(request).encode(), tenant, time.time_ns())
    pairs = []
    if examples is not None:
        loaded = read_pairs(examples)
        if not loaded.pairs:
            raise UsageError(f"--examples {examples}: no usable question/query pairs "
                             f"({len(loaded.rejected)} rejected)")  # fmt: skip
        pairs = loaded.pairs
    store = Store(store_dir)
    asker = Asker(store, Engine(store), examples=pairs, adapter=find_adapter(adapter),
                  templates=TemplateCache(default_cache_root() / "ask"))  # fmt: skip
    return asker.ask(asked).to_json(details=details)


def register(app: click.Group) -> None:
    """Add the ``ask`` command to ``app``."""

    @app.command("ask", help=_HELP, no_args_is_help=True)
    @click.argument("question")
    @click.option("--store", "store_dir", type=click.Path(exists=True, file_okay=False,
                  path_type=Path), help="Ask about this local store directory.")  # fmt: skip
    @click.option("--addr", help="Ask this logpipe server instead, e.g. http://127.0.0.1:3100.")
    @click.option("--since", default="1h", show_default=True,
                  help="How far back log queries read, before --to.")  # fmt: skip
    @click.option("--to", "end", help="End of the range (unix s/ns or RFC3339); default now.")
    @click.option("--limit", type=click.IntRange(1, 5000), default=100, show_default=True,
                  help="Maximum log entries.")  # fmt: skip
    @click.option("--candidates", type=click.IntRange(1, 16), default=4, show_default=True,
                  help="Candidate queries to write and check.")  # fmt: skip
    @click.option("--backend", type=click.Choice(["auto", "model", "retrieval"]),
                  default="auto", show_default=True,
                  help="auto: the model if an adapter is found, else retrieval.")  # fmt: skip
    @click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="LoRA adapter directory for the model (local store only).")  # fmt: skip
    @click.option("--examples", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="JSONL of solved examples ({question, query} or chat records) to "
                       "retrieve from and show the model (local store only).")  # fmt: skip
    @click.option("--explain", is_flag=True,
                  help="Also print the context, each candidate and what became of it.")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
    @click.option("--dry-run", is_flag=True, help="Write and check the query; do not run it.")
    @click.option("--tenant", default="fake", show_default=True, help="Tenant id.")
    def ask(  # noqa: PLR0917 - click maps each parameter to a flag
        question: str,
        store_dir: Path | None,
        addr: str | None,
        since: str,
        end: str | None,
        limit: int,
        candidates: int,
        backend: str,
        adapter: Path | None,
        examples: Path | None,
        explain: bool,
        as_json: bool,
        dry_run: bool,
        tenant: str,
    ) -> int:
        if (store_dir is None) == (addr is None):
            raise UsageError("give either --store DIR or --addr URL")
        if addr is not None and (adapter is not None or examples is not None):
            raise UsageError("--adapter and --examples apply to a local store; a server uses "
                             "its own")  # fmt: skip
        request: dict[str, Any] = {"question": question, "candidates": candidates,
                                   "dry_run": dry_run, "backend": backend, "explain": explain,
                                   "since": since, "limit": limit}  # fmt: skip
        if end is not None:
            request["end"] = end
        if addr is not None:
            from logpipe.server.client import post_json  # noqa: PLC0415

            body = json.loads(post_json(addr, "/api/v1/ask", request, tenant=tenant))
        else:
            assert store_dir is not None
            body = _local(store_dir, {**request, "tenant": tenant}, adapter, examples)
        if as_json:
            sys.stdout.write(json.dumps(body, ensure_ascii=False) + "\n")
        else:
            render_answer(body, sys.stdout, explain=explain)
        return 0 if body["status"] == "answered" else 1
