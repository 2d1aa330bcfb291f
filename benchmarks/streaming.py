"""Streaming throughput: Kafka → pipeline → store (committed) beside a bare consumer.

Why this baseline: kafka-python's own consumer loop is the ceiling for any Python
pipeline on it; the ratio says how much of that our decode, parse stage, batching, archive
writes (segments fsync'd, manifest replaced) and offset commits cost. All read the same
topic from the same local broker (``noida-db``, DESIGN.md §5) in the same run, with the
same fetch settings, each in its own consumer group: the bare consumer, the pipeline
without the parse stage (unless ``--no-parse``... is given, which skips that run) and the
pipeline as ``logpipe serve`` runs it, parse stage on. CPU seconds (all threads of this
process) per line are reported beside the rates: on a shared machine they say what a run
cost when the wall clock is disturbed.

Lines come from ``raw/HDFS_20000.log`` of the shared data when present (repeated),
synthetic HDFS-like lines otherwise. ``python -m benchmarks.streaming [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from logpipe.connectors.kafka import KafkaSource, KafkaSourceConfig

from benchmarks.common import (
    RESULTS_MD,
    RunInfo,
    default_data_dir,
    md_table,
    replace_section,
    run_info,
)
from benchmarks.soak import run_soak
from logpipe.pipeline import BatchLimits, ParseStage, Pipeline, StoreSink
from logpipe.store import Store

SECTION_BEGIN = "<!-- benchmark:streaming:begin -->"
SECTION_END = "<!-- benchmark:streaming:end -->"
SOAK_BEGIN = "<!-- benchmark:streaming-soak:begin -->"
SOAK_END = "<!-- benchmark:streaming-soak:end -->"
PARTITIONS = 4
FETCH = {"max_poll_records": 20_000, "fetch_max_bytes": 64 << 20}


def _lines(n: int) -> list[bytes]:
    path = default_data_dir() / "raw" / "HDFS_20000.log"
    if path.is_file():
        base = path.read_bytes().splitlines()
    else:
        base = [
            b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder %d for "
            b"block blk_%d terminating" % (i % 3, 38865049064139660 + i * 7919)
            for i in range(20_000)
        ]
    return [base[i % len(base)] for i in range(n)]


def _noida() -> str:
    beside = Path(sys.executable).parent / "noida-db"
    found = str(beside) if beside.is_file() else shutil.which("noida-db")
    if found is None:
        raise SystemExit("noida-db is not installed: pip install noida-db==0.2.3")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _produce(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, batch_size=512 << 10)
    t0 = time.perf_counter()
    for i, line in enumerate(lines):
        producer.send(topic, value=line, partition=i % PARTITIONS)
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def _bare(bootstrap: str, topic: str, n: int) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-bare",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FETCH,
    )
    t0 = time.perf_counter()
    seen = 0
    while seen < n:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    consumer.commit()
    elapsed = time.perf_counter() - t0
    consumer.close()
    return elapsed


def _ours(
    bootstrap: str, topic: str, n: int, store_dir: Path, *, parse: bool
) -> tuple[float, float, int]:
    """Seconds and CPU seconds (all threads) to store and commit ``n`` lines; lines stored."""
    config = KafkaSourceConfig(
        bootstrap_servers=bootstrap,
        topics=[topic],
        group_id=f"bench-logpipe-{'parse' if parse else 'raw'}",
        labels={"app": "hdfs"},
        payload="text",
        options=FETCH,
    )
    store = Store(store_dir)
    stages = [ParseStage.resume(store_dir / "_checkpoints" / "templates.json")] if parse else []
    pipe = Pipeline(
        [KafkaSource(config)],
        stages,
        [StoreSink(store)],
        limits=BatchLimits(max_lines=100_000, max_age_s=1.0),
    )
    t0, c0 = time.perf_counter(), time.process_time()
    pipe.start()
    while pipe.stats.lines_out < n and pipe.error is None:
        time.sleep(0.01)
    pipe.stop()  # drain: every offset committed before join returns
    pipe.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if pipe.error is not None:
        raise SystemExit(f"pipeline failed: {pipe.error}")
    stored = store.stats("fake").entries
    return elapsed, cpu, stored


@contextlib.contextmanager
def _broker() -> Iterator[tuple[Path, str]]:
    """A noida-db broker on a free loopback port: (a temp dir, its bootstrap address)."""
    noida = _noida()
    with tempfile.TemporaryDirectory(prefix="logpipe-stream-") as tmp:
        data_dir, port = Path(tmp) / "broker", _free_port()
        up = [noida, "up", "--only", "kafka", "--host", "127.0.0.1"]
        up += ["--kafka-port", str(port), "--data-dir", str(data_dir)]
        subprocess.run(up, check=True, capture_output=True)
        try:
            yield Path(tmp), f"127.0.0.1:{port}"
        finally:
            down = [noida, "down", "--data-dir", str(data_dir)]
            subprocess.run(down, check=True, capture_output=True)


_SOAK_HEADER = ["commit", "seconds", "lines/s", "lines stored", "RSS first min", "RSS last min",
                "RSS peak", "slope after the first min", "segments",
                "manifest.json / with chunks"]  # fmt: skip


def _soak_json(path: Path) -> dict[str, Any]:
    """The last line of an earlier ``--soak-secs N --json`` run's output."""
    try:
        last = path.read_text(encoding="utf-8").strip().splitlines()[-1]
        doc = json.loads(last)
    except (OSError, IndexError, ValueError) as exc:
        raise SystemExit(f"{path}: not the output of a --json soak run ({exc})") from None
    if not isinstance(doc, dict) or "rss_slope_mib_per_min" not in doc:
        raise SystemExit(f"{path}: its last line is not a soak run's JSON")
    return doc


def _soak_row(label: str, r: dict[str, Any]) -> list[str]:
    return [
        label,
        f"{r['soak_secs']:.0f}",
        f"{r['soak_rate_lines_per_s']:,}",
        f"{r['soak_stored']:,}",
        f"{r['rss_first_window_mib']:.1f} MiB",
        f"{r['rss_last_window_mib']:.1f} MiB",
        f"{r['rss_peak_mib']:.1f} MiB",
        f"{r['rss_slope_mib_per_min']:+.3f} MiB/min",
        f"{r['store_segments']:,}",
        f"{r['manifest_mib']:.2f} / {r.get('manifest_total_mib', r['manifest_mib']):.2f} MiB",
    ]


def _soak_main(args: argparse.Namespace, info: RunInfo, lines: list[bytes]) -> int:
    with _broker() as (tmp, bootstrap):
        result = run_soak(bootstrap, lines, secs=args.soak_secs, rate=args.soak_rate,
                          workdir=tmp, port=_free_port())  # fmt: skip
    w = result.window_s
    print(f"soak                  {result.secs:.0f} s at {result.rate:,} lines/s "
          f"({result.produced:,} produced, {result.stored:,} stored)")  # fmt: skip
    print(f"daemon RSS            first {w:.0f} s {result.first_mib:.1f} MiB, "
          f"last {w:.0f} s {result.last_mib:.1f} MiB, peak {result.peak_mib:.1f} MiB")  # fmt: skip
    print(f"slope after warm-up   {result.slope_mib_per_min:+.3f} MiB/min "
          f"({result.samples} samples)")  # fmt: skip
    print(f"store at the end      {result.segments:,} segments, manifest.json "
          f"{result.manifest_mib:.2f} MiB ({result.manifest_total_mib:.2f} MiB with "
          "its sealed chunks)")  # fmt: skip
    if result.stored < result.produced:
        raise SystemExit(f"stored {result.stored} of {result.produced} lines")
    if args.write_results:
        rows = [_soak_row(f"`{info.commit}` (this run)", result.as_json())]
        earlier = ""
        if args.soak_compare is not None:
            before = _soak_json(args.soak_compare)
            run = before.get("run", {})
            rows.insert(0, _soak_row(f"`{run.get('commit', '?')}` (earlier run)", before))
            earlier = (
                f" The first row is an earlier run of the same command at commit "
                f"`{run.get('commit', '?')}` ({run.get('date', '?')}, same machine); the "
                "machine's load differed between the two runs, so compare slopes and segment "
                "counts rather than single megabytes."
            )
        section = "\n".join([
            SOAK_BEGIN,
            "### Streaming soak: the daemon's memory under a steady load",
            "",
            f"Produced by `python -m benchmarks.streaming --soak-secs {result.secs:.0f}` on "
            f"{info.date}, commit `{info.commit}`; machine: {info.cpu}, {info.cores} cores "
            f"(shared with other work while it ran); Python {info.python}.",
            "",
            "`logpipe serve` (Kafka source of 4 partitions, parse stage on, store, default "
            "config) as its own process; a producer sends HDFS lines at a fixed rate; the "
            "daemon's RSS is read from /proc every 5 s. First/last: mean of the first and "
            "last minute; the slope is a least-squares fit after the first minute. The "
            "store's segment count and manifest size at the end are shown beside the RSS "
            "(manifest.json, which every flush rewrites, and with its sealed chunk files): "
            "the manifest's entries are held in memory, so they are what grows with the "
            "number of flushes if each flush leaves its segments behind (the daemon now "
            "writes one segment per stream and flush and merges small segments between "
            "flushes; docs/FORMAT.md)."
            + earlier,
            "",
            md_table(_SOAK_HEADER, rows),
            "",
            SOAK_END,
            "",
        ])  # fmt: skip
        replace_section(RESULTS_MD, section, SOAK_BEGIN, SOAK_END)
        print(f"wrote {RESULTS_MD}")
    if args.json:
        print(json.dumps({"run": info.as_json(), **result.as_json()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k lines instead of 500k")
    parser.add_argument("--lines", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--no-parse",
        action="store_true",
        help="skip the extra run without the parse stage",
    )
    parser.add_argument(
        "--soak-secs",
        type=float,
        default=None,
        help="instead: run `logpipe serve` this long under a steady load, sampling its RSS",
    )
    parser.add_argument(
        "--soak-rate", type=int, default=5000, help="lines/s produced during the soak"
    )
    parser.add_argument(
        "--soak-compare",
        type=Path,
        default=None,
        help="with --write-results: the saved output of an earlier `--soak-secs N --json` "
        "run (another commit), shown as a row above this run's",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="rewrite this benchmark's section of benchmarks/RESULTS.md",
    )
    args = parser.parse_args(argv)
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    info = run_info(args.quick)
    n = args.lines or (100_000 if args.quick else 500_000)
    lines = _lines(n)
    if args.soak_secs is not None:
        return _soak_main(args, info, lines)
    with _broker() as (tmp, bootstrap):
        produce_s = _produce(bootstrap, "bench", lines)
        c0 = time.process_time()
        bare_s = _bare(bootstrap, "bench", n)
        bare_cpu = time.process_time() - c0
        raw = None if args.no_parse else _ours(bootstrap, "bench", n, tmp / "raw", parse=False)
        ours_s, ours_cpu, stored = _ours(bootstrap, "bench", n, tmp / "store", parse=True)
    for got in (stored, *([raw[2]] if raw else [])):
        if got != n:
            raise SystemExit(f"stored {got} lines, produced {n}")
    raw_mb = sum(map(len, lines)) / 1e6
    figures: dict[str, Any] = {
        "lines": n,
        "raw_mb": round(raw_mb, 1),
        "produce_lines_per_s": round(n / produce_s),
        "bare_consumer_lines_per_s": round(n / bare_s),
        "logpipe_lines_per_s": round(n / ours_s),
        "logpipe_mb_per_s": round(raw_mb / ours_s, 1),
        "ratio_vs_bare": round(bare_s / ours_s, 3),
        "bare_cpu_us_per_line": round(bare_cpu / n * 1e6, 1),
        "logpipe_cpu_us_per_line": round(ours_cpu / n * 1e6, 1),
        "unit": "lines/s end to end (consume, parse, archive with fsync, commit)",
    }
    if raw is not None:
        figures["no_parse_lines_per_s"] = round(n / raw[0])
        figures["no_parse_ratio_vs_bare"] = round(bare_s / raw[0], 3)
        figures["no_parse_cpu_us_per_line"] = round(raw[1] / n * 1e6, 1)
    rows = [("bare kafka-python", n / bare_s, bare_cpu)]
    if raw is not None:
        rows.append(("logpipe, no parse", n / raw[0], raw[1]))
    rows.append(("logpipe (parse on)", n / ours_s, ours_cpu))
    print(f"lines                 {n:,} ({raw_mb:.1f} MB)")
    for name, rate, cpu in rows:
        print(f"{name:<21} {rate:>10,.0f} lines/s  {rate * bare_s / n:.2f}x of bare  "
              f"{cpu / n * 1e6:5.1f} CPU-us/line")  # fmt: skip
    if args.write_results:
        header = ["run", "lines/s", "of the bare consumer", "CPU µs per line"]
        table = [
            [name, f"{rate:,.0f}", f"{rate * bare_s / n:.2f}x", f"{cpu / n * 1e6:.1f}"]
            for name, rate, cpu in rows
        ]
        section = "\n".join([
            SECTION_BEGIN,
            "## Streaming: Kafka → pipeline → store, beside a bare consumer",
            "",
            f"Produced by `python -m benchmarks.streaming` on {info.date}, commit "
            f"`{info.commit}`; machine: {info.cpu}, {info.cores} cores (shared: other work "
            f"may have run meanwhile); Python {info.python}.",
            "",
            f"{n:,} lines ({raw_mb:.1f} MB of HDFS log lines) in one local broker (noida-db), "
            "one topic of 4 partitions; the bare kafka-python consumer and the pipeline "
            "(decode, batch, archive segments with fsync, manifest, commit offsets; with "
            "and without the parse stage that mines templates and extracts params) read it "
            "in the same run, each in its own consumer group. logpipe's rate counts lines "
            "stored and committed; CPU is every thread of the process.",
            "",
            md_table(header, table),
            "",
            SECTION_END,
            "",  # a newline after the marker: rewriting the section keeps the blank line
        ])  # fmt: skip
        replace_section(RESULTS_MD, section, SECTION_BEGIN, SECTION_END)
        print(f"wrote {RESULTS_MD}")
    if args.json:
        print(json.dumps({"run": info.as_json(), **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
