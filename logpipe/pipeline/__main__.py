"""``python -m logpipe.pipeline``: consume Kafka topics into a store until SIGTERM/SIGINT.

Why it exists before ``logpipe serve``: the crash tests and the streaming benchmark need a
real process to kill -9 and restart, and the daemon's config/HTTP wiring comes later. It
builds exactly what the daemon will: KafkaSource → Pipeline → StoreSink.

Example::

    python -m logpipe.pipeline --bootstrap 127.0.0.1:9092 --topic logs --group logpipe \\
        --store ./store --label env=dev

Exit codes: 0 after a clean drain, 1 when a part failed for good, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from logpipe.connectors.kafka import KafkaSource, KafkaSourceConfig
from logpipe.errors import LogpipeError
from logpipe.pipeline.batching import BatchLimits
from logpipe.pipeline.runner import Pipeline
from logpipe.pipeline.store_sink import StoreSink
from logpipe.store import DEFAULT_TENANT, Store

__all__ = ["build_kafka_pipeline", "main"]


def _label(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m logpipe.pipeline", description=__doc__)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    p.add_argument("--topic", action="append", required=True, help="topic (repeatable)")
    p.add_argument("--group", required=True, help="consumer group id")
    p.add_argument("--store", required=True, help="store root directory")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--label", action="append", type=_label, default=[], help="NAME=VALUE")
    p.add_argument("--payload", choices=["auto", "json", "text"], default="auto")
    p.add_argument("--max-lines", type=int, default=50_000, help="flush after this many lines")
    p.add_argument("--max-age-ms", type=int, default=1000, help="flush after this long")
    p.add_argument("--session-timeout-ms", type=int, default=10_000)
    p.add_argument("--instance-id", default=None, help="static group membership id")
    p.add_argument("--stats", action="store_true", help="print totals as JSON on exit")
    return p


def build_kafka_pipeline(args: argparse.Namespace) -> Pipeline:
    """The Kafka → store pipeline for parsed arguments (also used by the benchmark)."""
    config = KafkaSourceConfig(
        bootstrap_servers=args.bootstrap,
        topics=args.topic,
        group_id=args.group,
        labels=dict(args.label),
        payload=args.payload,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 4),
        group_instance_id=args.instance_id,
    )
    sink = StoreSink(Store(args.store), args.tenant)
    limits = BatchLimits(max_lines=args.max_lines, max_age_s=args.max_age_ms / 1000)
    return Pipeline([KafkaSource(config)], [], [sink], limits=limits)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        pipeline = build_kafka_pipeline(args)
        pipeline.run()
    except LogpipeError as exc:
        sys.stderr.write(f"logpipe pipeline: {exc}\n")
        return exc.exit_code
    if args.stats:
        s = pipeline.stats
        totals = {"lines_in": s.lines_in, "lines_out": s.lines_out, "dropped": s.dropped}
        sys.stdout.write(json.dumps(totals) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
