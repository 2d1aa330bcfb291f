"""Produce web-shop-like log lines to a Kafka topic until interrupted (``make run-kafka``).

Written by the logpipe authors; lines carry the current time so Grafana's default "last 1h"
range shows them. Creates the topic (3 partitions) when it is missing::

    python samples/produce_logs.py --bootstrap 127.0.0.1:9092 --topic logs --rate 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

MESSAGES = [
    "INFO [worker-{w}] web.access: GET /api/v1/products/{n} from 10.0.{a}.{b} status=200 bytes={s} in {ms} ms",
    "INFO [worker-{w}] checkout.payment: Payment {h} authorised for order {n} amount={s}.99 EUR in {ms} ms",
    "INFO [worker-{w}] cart.service: Added item {n} to cart of user u{a}{b}",
    "WARN [worker-{w}] db.pool: Connection pool at {a}% capacity, {b} waiting",
    "ERROR [worker-{w}] checkout.order: Order {n} could not be saved: database connection timeout after {ms} ms",
]


def line(rng: random.Random) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    template = rng.choices(MESSAGES, weights=[60, 15, 20, 4, 1])[0]
    return f"{now} " + template.format(
        w=rng.randint(1, 4), n=rng.randint(100000, 999999), a=rng.randint(0, 99),
        b=rng.randint(0, 99), s=rng.randint(100, 9999), ms=rng.randint(1, 900),
        h=f"{rng.getrandbits(32):08x}",
    )  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="logs")
    p.add_argument("--rate", type=float, default=200.0, help="lines per second")
    args = p.parse_args()
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        admin.create_topics([NewTopic(args.topic, num_partitions=3, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=args.bootstrap)
    rng = random.Random(42)
    sent = 0
    try:
        while True:
            producer.send(args.topic, line(rng).encode())
            sent += 1
            time.sleep(1.0 / args.rate)
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush(timeout=5)
        producer.close(timeout=5)
        sys.stderr.write(f"produce_logs: sent {sent} lines to {args.topic}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
