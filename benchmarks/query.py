"""Query benchmark: LogQL over the log store beside decompress-and-grep of the same logs.

Run ``python -m benchmarks.query`` (``--quick`` for 200,000 lines, ``--lines N``, ``--json``
for one JSON object of every figure as the last output line, ``--write-results`` to rewrite
this benchmark's section of ``benchmarks/RESULTS.md``).

Why it is built this way:

* **Data** is generated here with a fixed seed (no shared corpus is big enough): a day of
  web-service logs over 20 streams (``app`` x ``host``), half logfmt and half JSON, with
  levels, statuses, latencies and request ids; 5 million lines by default, as issue 5 asks.
  Five lines carry a needle (a request id seen nowhere else).
* **The store** is filled through ``Store.ingest`` (archive segments with timestamps, zstd);
  the time that takes is reported too. The engine is warmed with one unrelated query first
  (the grammar is compiled once per process), as a running server is.
* **The baseline** is what a user without logpipe does: the same lines, one zstd file per
  stream (``zstd -3``, as a log shipper writes them), searched with ``zstd -dc FILE | grep -F
  NEEDLE`` per file. It runs in the same process tree, in the same run.
* **Queries** run in-process through :class:`logpipe.logql.engine.Engine` (what the HTTP API
  calls): the needle search over the whole day, then three metric queries over one hour with
  a one-minute step. Times are the best of N runs. The needle search must return exactly the
  lines grep finds, else its speed-up is not reported.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard
from rich.console import Console

from benchmarks.common import (
    RESULTS_MD,
    fmt,
    fmt_ratio,
    md_table,
    replace_section,
    rich_table,
    run_info,
    table_console,
)
from logpipe.logql.engine import Engine
from logpipe.logql.results import Matrix, Streams, Vector
from logpipe.store import Store

SECTION_BEGIN = "<!-- benchmark:query:begin -->"
SECTION_END = "<!-- benchmark:query:end -->"
APPS = ("api", "web", "auth", "billing")
HOSTS = ("h1", "h2", "h3", "h4", "h5")
NEEDLE = "req-4f1c9e2d7a"
DAY_NS = 86_400 * 1_000_000_000
START_NS = 1_700_000_000 * 1_000_000_000  # a fixed day: reproducible figures
PATHS = ("/", "/login", "/api/v1/items", "/api/v1/orders", "/static/app.js", "/health")


def generate(n_lines: int, seed: int = 7) -> dict[tuple[str, str], tuple[list[int], list[bytes]]]:
    """``n_lines`` lines spread over 20 streams and one day, in time order per stream."""
    rng = random.Random(seed)
    streams: dict[tuple[str, str], tuple[list[int], list[bytes]]] = {
        (a, h): ([], []) for a in APPS for h in HOSTS
    }
    keys = list(streams)
    step = DAY_NS // n_lines
    needle_at = set(rng.sample(range(n_lines), 5))
    for i in range(n_lines):
        app, host = keys[rng.randrange(len(keys))]
        ts = START_NS + i * step
        level = rng.choices(("info", "warn", "error"), (90, 7, 3))[0]
        status = 500 if level == "error" else rng.choice((200, 200, 200, 201, 304, 404))
        latency = int(rng.expovariate(1 / 40)) + (400 if level == "error" else 1)
        req = NEEDLE if i in needle_at else f"req-{rng.getrandbits(40):010x}"
        path = rng.choice(PATHS)
        if app in ("api", "billing"):
            line = json.dumps({"level": level, "status": status, "latency_ms": latency,
                               "path": path, "req": req}, separators=(",", ":"))  # fmt: skip
        else:
            line = f"level={level} status={status} latency_ms={latency} path={path} req={req}"
        streams[(app, host)][0].append(ts)
        streams[(app, host)][1].append(line.encode())
    return streams


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def zstd_grep(files: list[Path], needle: str) -> list[bytes]:
    """``zstd -dc FILE | grep -aF NEEDLE`` for every file; the matching lines."""
    found: list[bytes] = []
    for path in files:
        pipe = subprocess.run(
            f"zstd -dcq {path} | grep -aF {needle}",
            shell=True,  # the baseline is literally this shell pipeline
            capture_output=True,
            check=False,
        )
        found.extend(x for x in pipe.stdout.split(b"\n") if x)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="200,000 lines, one run each.")
    parser.add_argument("--lines", type=int, default=None, help="Lines to generate (5,000,000).")
    parser.add_argument("--runs", type=int, default=None, help="Runs per query (3; quick 1).")
    parser.add_argument("--json", action="store_true", help="Print every figure as JSON last.")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="Rewrite this benchmark's section of benchmarks/RESULTS.md.",
    )
    args = parser.parse_args(argv)
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    n_lines = args.lines or (200_000 if args.quick else 5_000_000)
    runs = args.runs or (1 if args.quick else 3)
    console = Console(stderr=True)
    info = run_info(args.quick, {"libzstd": ".".join(map(str, zstandard.ZSTD_VERSION))})

    started = time.perf_counter()
    data = generate(n_lines)
    console.print(f"generated {n_lines:,} lines in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory(prefix="logpipe-query-bench-") as tmp:
        root = Path(tmp)
        store = Store(root / "store")
        started = time.perf_counter()
        for (app, host), (ts, lines) in data.items():
            store.ingest("fake", {"app": app, "host": host}, ts, lines)
        ingest_secs = time.perf_counter() - started
        console.print(f"ingested in {ingest_secs:.1f} s ({n_lines / ingest_secs:,.0f} lines/s)")
        files = []
        raw_bytes = 0
        compressor = zstandard.ZstdCompressor(level=3)
        for (app, host), (_, lines) in data.items():
            blob = b"\n".join(lines) + b"\n"
            raw_bytes += len(blob)
            path = root / f"{app}-{host}.log.zst"
            path.write_bytes(compressor.compress(blob))
            files.append(path)
        store_bytes = sum(p.stat().st_size for p in (root / "store").rglob("*") if p.is_file())
        zstd_bytes = sum(p.stat().st_size for p in files)
        del data

        engine = Engine(store)
        # a server answers warm: load the grammar and code paths once, on another query
        engine.query_range('{app="none"}', start_ns=START_NS, end_ns=START_NS + 1)
        grep_secs, grep_lines = best_of(runs, lambda: zstd_grep(files, NEEDLE))

        def needle() -> Any:
            return engine.query_range(f'{{app=~".+"}} |= "{NEEDLE}"', start_ns=START_NS,
                                      end_ns=START_NS + DAY_NS, limit=1000)  # fmt: skip

        needle_secs, needle_result = best_of(runs, needle)
        assert isinstance(needle_result, Streams)
        ours = sorted(line.encode() for s in needle_result.streams for _, line in s.entries)
        same = ours == sorted(grep_lines)
        hour_start = START_NS + 12 * 3_600_000_000_000
        hour_end = hour_start + 3_600_000_000_000
        metric_queries = [
            'sum by (host) (count_over_time({app="web"}[5m]))',
            'quantile_over_time(0.99, {app="api"} | json | unwrap latency_ms [5m]) by (host)',
            'topk(3, sum by (app) (rate({app=~".+"} |= "error" [5m])))',
        ]
        rows = [["needle search (1 day)", f'{{app=~".+"}} |= "{NEEDLE}"', fmt(needle_secs),
                 fmt(grep_secs), fmt_ratio(grep_secs / needle_secs if same else None),
                 f"{sum(len(s.entries) for s in needle_result.streams)} lines",
                 "yes" if same else "NO"]]  # fmt: skip
        figures: dict[str, Any] = {"needle_secs": needle_secs, "zstd_grep_secs": grep_secs,
                                   "needle_same_lines": same}  # fmt: skip

        def metric(query: str) -> Any:
            return engine.query_range(
                query, start_ns=hour_start, end_ns=hour_end, step_ns=60_000_000_000
            )

        for query in metric_queries:
            secs, result = best_of(runs, functools.partial(metric, query))
            series = len(result.series) if isinstance(result, Matrix) else (
                len(result.samples) if isinstance(result, Vector) else 0)  # fmt: skip
            rows.append(["metric (1 h, step 1 m)", query, fmt(secs), fmt(grep_secs), "",
                         f"{series} series", ""])  # fmt: skip
            figures[query] = secs
    header = ["query", "LogQL", "logpipe s", "decompress+grep s", "speed-up", "result", "same"]
    table_console().print(rich_table("LogQL over the store", header, rows, {"query", "LogQL"}))
    summary = (
        f"{n_lines:,} lines, {raw_bytes / 1e6:,.0f} MB raw; store {store_bytes / 1e6:,.1f} MB "
        f"(ingest {n_lines / ingest_secs:,.0f} lines/s), zstd -3 files {zstd_bytes / 1e6:,.1f} MB"
    )
    print(summary)
    if args.write_results:
        section = "\n".join([
            SECTION_BEGIN,
            "## Query: LogQL over the store beside zstd -dc | grep",
            "",
            f"Produced by `python -m benchmarks.query` on {info.date}, commit `{info.commit}`; "
            f"machine: {info.cpu}, {info.cores} cores; Python {info.python}.",
            "",
            f"Data: {summary}. Generated with a fixed seed: 20 streams (app x host), one day, "
            "half logfmt and half JSON lines. Baseline: one zstd file per stream, searched with "
            "`zstd -dcq FILE | grep -aF NEEDLE`; its time is shown beside every query as the "
            f"cost of reading all the logs. Best of {runs} runs.",
            "",
            md_table(header, rows),
            "",
            SECTION_END,
        ])  # fmt: skip
        replace_section(RESULTS_MD, section, SECTION_BEGIN, SECTION_END)
        print(f"wrote {RESULTS_MD}")
    if args.json:
        figures.update(lines=n_lines, ingest_secs=ingest_secs, store_bytes=store_bytes,
                       zstd_bytes=zstd_bytes)  # fmt: skip
        print(json.dumps({"run": info.as_json(), **figures}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
