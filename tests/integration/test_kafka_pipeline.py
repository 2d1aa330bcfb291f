"""Kafka → pipeline → store against a real broker: exactly-once in the store across
partitions, kill -9 crashes, a broker restart, and bad messages."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from logpipe.connectors.kafka import KafkaSource, KafkaSourceConfig

from logpipe.pipeline import BatchLimits, Pipeline, StoreSink
from logpipe.store import Store
from tests.conftest import REPO
from tests.kafka_broker import Broker

pytestmark = pytest.mark.kafka

TENANT = "fake"


def _produce(broker: Broker, topic: str, values: list[bytes], partitions: int) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for i, value in enumerate(values):
        producer.send(topic, value=value, partition=i % partitions)
    producer.flush()
    producer.close()


def _stored(store_dir: Path) -> list[bytes]:
    store = Store(store_dir)
    if TENANT not in store.tenants():
        return []
    return [
        line
        for batch in store.read(TENANT, direction="forward")
        for line in batch.column("line").to_pylist()
    ]


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _pipeline(
    broker: Broker,
    topic: str,
    store_dir: Path,
    queue_chunks: int = 64,
    max_batch_lines: int = 50_000,
    **kw: object,
) -> Pipeline:
    config = KafkaSourceConfig(
        bootstrap_servers=broker.bootstrap,
        topics=[topic],
        group_id=f"g-{topic}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **kw,
    )
    sink = StoreSink(Store(store_dir), TENANT)
    limits = BatchLimits(max_lines=max_batch_lines, max_age_s=0.1)
    return Pipeline([KafkaSource(config)], [], [sink], limits=limits, queue_chunks=queue_chunks)


@pytest.fixture
def running() -> Iterator[list[Pipeline]]:
    """Pipelines a test started; stopped even when the test fails."""
    started: list[Pipeline] = []
    yield started
    for p in started:
        p.stop()
        p.join(30)


def test_n_lines_over_partitions_are_stored_exactly_once(
    kafka_broker: Broker, tmp_path: Path, running: list[Pipeline]
) -> None:
    n = 20_000
    kafka_broker.create_topic("e2e", 4)
    values = [b"msg-%06d some text" % i for i in range(n)]
    _produce(kafka_broker, "e2e", values, 4)
    pipe = _pipeline(kafka_broker, "e2e", tmp_path)
    running.append(pipe)
    pipe.start()
    _wait(lambda: pipe.stats.lines_out >= n, 30, "all lines stored")
    pipe.stop()
    assert pipe.join(30)
    assert pipe.error is None
    assert sorted(_stored(tmp_path)) == sorted(values)
    assert Store(tmp_path).manifest(TENANT).offsets == {("e2e", p): n // 4 - 1 for p in range(4)}
    metrics = pipe.metrics.exposition().decode()
    assert f'logpipe_sink_lines_total{{sink="store",source="kafka"}} {float(n)}' in metrics
    assert 'logpipe_consumer_lag{partition="0",source="kafka",topic="e2e"} 0.0' in metrics
    assert "logpipe_segment_flushes_total" in metrics


def test_bad_messages_are_counted_and_never_stop_the_stream(
    kafka_broker: Broker, tmp_path: Path, running: list[Pipeline]
) -> None:
    kafka_broker.create_topic("bad", 1, {"max.message.bytes": str(32 << 20)})
    big = b"B" * (10 << 20)
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, max_request_size=32 << 20, linger_ms=5
    )
    for value in [b"first", b'{"line": 5}', b"\xff\xfe not utf-8", big, b'{"line": "last"}']:
        producer.send("bad", value=value)
    producer.send("bad", key=b"tombstone", value=None)
    producer.send("bad", value=b"after")
    producer.flush()
    producer.close()
    pipe = _pipeline(kafka_broker, "bad", tmp_path)
    running.append(pipe)
    pipe.start()
    _wait(lambda: Store(tmp_path).manifest(TENANT).offsets.get(("bad", 0)) == 6, 30, "offset 6")
    pipe.stop()
    assert pipe.join(30)
    stored = _stored(tmp_path)
    assert stored[:3] == [b"first", b"\xff\xfe not utf-8", b"B" * (1 << 20)]  # truncated
    assert stored[3:] == [b"last", b"after"]
    assert pipe.stats.dropped == {"invalid_json": 1, "null_payload": 1}
    metrics = pipe.metrics.exposition().decode()
    assert 'logpipe_truncated_lines_total{source="kafka"} 1.0' in metrics


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    topic, partitions, total = "crash", 3, 30_000
    kafka_broker.create_topic(topic, partitions)
    values = [b"crash-%06d" % i for i in range(total)]
    store_dir = tmp_path / "store"
    cmd = [
        sys.executable,
        "-m",
        "logpipe.pipeline",
        "--bootstrap",
        kafka_broker.bootstrap,
        "--topic",
        topic,
        "--group",
        "g-crash",
        "--store",
        str(store_dir),
        "--max-lines",
        "2000",
        "--max-age-ms",
        "50",
        "--session-timeout-ms",
        "6000",
        "--instance-id",
        "crash-test-0",  # static membership: a restart takes the dead member's place
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))

    logs: list[Path] = []

    def spawn() -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"run-{len(logs)}.log")
        with logs[-1].open("wb") as err:  # a file, not a pipe: a full pipe would block it
            return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=err, stderr=err)

    def produce_slowly() -> None:  # in slices, so the kills land while lines keep coming
        for i in range(0, total, 3000):
            _produce(kafka_broker, topic, values[i : i + 3000], partitions)
            time.sleep(0.3)

    producing = threading.Thread(target=produce_slowly)
    producing.start()
    rng = random.Random(6)
    kills = 0
    proc = spawn()
    try:
        for _ in range(6):
            time.sleep(rng.uniform(0.4, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            proc = spawn()
        producing.join(60)
        _wait(lambda: len(_stored(store_dir)) >= total, 60, "every line after the crashes")
        _wait(lambda: b"assigned" in logs[-1].read_bytes(), 30, "the last run to join")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, logs[-1].read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        producing.join(60)
    stored = Counter(_stored(store_dir))
    assert kills >= 5
    assert sorted(stored) == sorted(values)
    assert max(stored.values()) == 1


def test_broker_restart_while_running_loses_nothing(own_broker: Broker, tmp_path: Path) -> None:
    # In a child process: kafka-python leaks the sockets of its refused reconnects, and
    # this suite turns every warning, a ResourceWarning at GC included, into an error.
    own_broker.create_topic("restart", 2)
    first = [b"before-%05d" % i for i in range(5000)]
    second = [b"after-%05d" % i for i in range(5000)]
    _produce(own_broker, "restart", first, 2)
    store_dir, log = tmp_path / "store", tmp_path / "run.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "logpipe.pipeline", "--bootstrap", own_broker.bootstrap),
                *("--topic", "restart", "--group", "g-restart", "--store", str(store_dir)),
                *("--max-age-ms", "100"),
            ],
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=err,
            stderr=err,
        )
    try:
        _wait(lambda: len(_stored(store_dir)) >= len(first), 30, "the first half")
        own_broker.down()
        time.sleep(1.0)
        own_broker.up()
        _produce(own_broker, "restart", second, 2)
        _wait(lambda: len(_stored(store_dir)) >= 10_000, 60, "the second half")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(_stored(store_dir)) == sorted(first + second)
    assert b"retrying" in log.read_bytes() or b"ECONNREFUSED" in log.read_bytes()


def test_module_entry_point_prints_stats(kafka_broker: Broker, tmp_path: Path) -> None:
    kafka_broker.create_topic("cli", 1)
    _produce(kafka_broker, "cli", [b"a", b"b"], 1)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "logpipe.pipeline", "--bootstrap", kafka_broker.bootstrap),
            *("--topic", "cli", "--group", "g-cli", "--store", str(tmp_path), "--stats"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    _wait(lambda: len(_stored(tmp_path)) == 2, 30, "two lines")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(out.decode().strip().splitlines()[-1])["lines_out"] == 2


def test_disk_full_stops_consuming_reports_and_resumes_losing_nothing(
    kafka_broker: Broker, tmp_path: Path, running: list[Pipeline]
) -> None:
    """No space left on the store's device (ENOSPC at the segment write, as a full tmpfs or
    a quota gives it): nothing is committed, consumption stops at the bounded queue, health
    says why; when space returns every line is stored exactly once."""
    import errno

    n = 6_000
    kafka_broker.create_topic("full", 2)
    values = [b"disk-%05d payload" % i for i in range(n)]
    _produce(kafka_broker, "full", values, 2)
    pipe = _pipeline(
        kafka_broker, "full", tmp_path, queue_chunks=2, max_batch_lines=1000, max_poll_records=200
    )
    sink = pipe.sinks[0]
    assert isinstance(sink, StoreSink)
    files = sink.store.files
    real_put = files.put_built
    full = threading.Event()
    full.set()

    def put_built(rel: str, build: Callable[[Path], None]) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device", rel)
        return real_put(rel, build)

    files.put_built = put_built  # type: ignore[method-assign]
    running.append(pipe)
    pipe.start()
    _wait(lambda: not pipe.health.snapshot().ready, 20, "health to report the full disk")
    time.sleep(2.0)
    assert _stored(tmp_path) == []
    assert any("space" in r.lower() for r in pipe.health.snapshot().reasons)
    assert pipe.stats.lines_out == 0 and pipe.error is None
    # the source stopped at the bounded queue: far from everything was consumed
    assert pipe.stats.lines_in < n // 2, pipe.stats
    full.clear()  # space is back
    _wait(lambda: pipe.stats.lines_out >= n, 60, "all lines stored after the disk freed up")
    pipe.stop()
    assert pipe.join(30) and pipe.error is None
    stored = _stored(tmp_path)
    assert sorted(stored) == sorted(values) and len(stored) == n
