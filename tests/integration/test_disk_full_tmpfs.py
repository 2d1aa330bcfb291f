"""A real full disk: ``logpipe serve`` with its store on a small tmpfs, in a mount namespace.

Why a namespace: mounting a tmpfs needs CAP_SYS_ADMIN; ``unshare --user --map-root-user
--mount`` gives it to the child alone, without touching the host's mounts, and the tmpfs
vanishes with the daemon. The test reaches the daemon's tmpfs through
``/proc/<pid>/root/<mount point>`` (the daemon's view of the file system) to fill it with a
ballast file and to free it again; everything else goes through the broker and the daemon's
HTTP API over loopback, as an operator would see it.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from logpipe.store import Store
from tests.daemonproc import ServeProcess, free_port, wait_until
from tests.kafka_broker import Broker

TOPIC, GROUP, PARTITIONS = "tmpfs-full", "g-tmpfs-full", 2


def _unshare_reason(probe_dir: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a user+mount namespace here (None: it can)."""
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is not installed"
    probe_dir.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size=64k tmpfs "$0"'
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, str(probe_dir)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        return (
            "cannot mount a tmpfs in a user namespace here (unshare --user --map-root-user "
            f"--mount failed: {proc.stderr.decode(errors='replace').strip()})"
        )
    return None


def _fill(directory: Path) -> Path:
    """Write a ballast file until the file system is full to the last page."""
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return ballast


def _produce(broker: Broker, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for i, value in enumerate(values):
        producer.send(TOPIC, value=value, partition=i % PARTITIONS)
    producer.flush()
    producer.close()


def _committed(broker: Broker) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offsets = admin.list_group_offsets(GROUP)[GROUP]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == TOPIC}


def _start_on_tmpfs(tmp_path: Path, sources: str) -> ServeProcess:
    """``logpipe serve`` with ``sources`` (TOML) and its store on a 4 MiB tmpfs (room for
    the first segments, the manifest and the checkpoints)."""
    reason = _unshare_reason(tmp_path / "probe")
    if reason is not None:
        pytest.skip(reason)
    store = tmp_path / "store"  # the mount point; the tmpfs exists only in the namespace
    store.mkdir()
    port = free_port()
    config = tmp_path / "logpipe.toml"
    config.write_text(
        f'[store]\nroot = "{store}"\n{sources}'
        "[pipeline]\nmax_batch_lines = 200\nmax_batch_age_secs = 0.1\nqueue_chunks = 2\n"
        "drain_timeout_secs = 20.0\n"
        f"[server]\nport = {port}\n"
    )
    mount = 'mount -t tmpfs -o size=4m tmpfs "$0" && exec "$@"'
    wrapper = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, str(store)]
    daemon = ServeProcess(config, port, tmp_path, wrapper=wrapper)
    daemon.start()
    return daemon


def _inside(daemon: ServeProcess, path: Path) -> Path:
    """``path`` as the daemon sees it (its mount namespace)."""
    return Path(f"/proc/{daemon.pid}/root") / path.relative_to("/")


@pytest.fixture
def tmpfs_daemon(kafka_broker: Broker, tmp_path: Path) -> Iterator[ServeProcess]:
    kafka_broker.create_topic(TOPIC, PARTITIONS)
    sources = (
        "[[sources.kafka]]\n"
        f'bootstrap = "{kafka_broker.bootstrap}"\ntopics = ["{TOPIC}"]\ngroup = "{GROUP}"\n'
        "session_timeout_secs = 6.0\nmax_poll_records = 100\n"
    )
    daemon = _start_on_tmpfs(tmp_path, sources)
    yield daemon
    daemon.kill()


@pytest.mark.kafka
def test_full_tmpfs_stops_consuming_reports_commits_nothing_unstored_and_resumes(
    kafka_broker: Broker, tmpfs_daemon: ServeProcess, tmp_path: Path
) -> None:
    daemon = tmpfs_daemon
    inside = _inside(daemon, tmp_path / "store")
    t0 = time.time_ns()
    window = (t0 - 600 * 10**9, t0 + 600 * 10**9)
    selector = f'{{topic="{TOPIC}"}}'

    before = [b"before-full-%05d padding to make segments bigger" % i for i in range(1000)]
    _produce(kafka_broker, before)
    wait_until(lambda: len(daemon.query_lines(selector, *window)) == 1000, 30, "the first lines")
    assert daemon.ready()[0] == 200

    ballast = _fill(inside)
    during = [b"while-full-%05d padding to make segments bigger" % i for i in range(3000)]
    _produce(kafka_broker, during)

    # It reports: /ready names the full disk.
    wait_until(lambda: daemon.ready()[0] == 503, 30, "/ready to report the full disk")
    why = daemon.ready()[1]
    assert "No space left on device" in why, why
    # It stops consuming: the bounded queue fills and the source stops polling.
    consumed = daemon.metric("logpipe_source_lines_total", source="kafka")
    time.sleep(2.0)
    assert daemon.metric("logpipe_source_lines_total", source="kafka") == consumed
    assert consumed < 1000 + len(during) // 2, consumed
    assert daemon.metric("logpipe_consumer_lag", source="kafka") > 0
    assert daemon.metric("logpipe_sink_errors_total", sink="store") > 0
    # Nothing new is stored, and no offset is committed past what the store holds.
    assert len(daemon.query_lines(selector, *window)) == 1000
    held = Store(inside).manifest("fake").offsets
    for partition, offset in _committed(kafka_broker).items():
        assert offset <= held.get((TOPIC, partition), -1) + 1, (partition, offset, held)
    assert daemon.proc is not None and daemon.proc.poll() is None  # still running

    ballast.unlink()  # space returns
    want = sorted(x.decode() for x in before + during)
    wait_until(
        lambda: len(daemon.query_lines(selector, *window)) >= len(want), 60, "every line stored"
    )
    wait_until(lambda: daemon.ready()[0] == 200, 30, "/ready to recover")
    stored = daemon.query_lines(selector, *window)
    assert sorted(stored) == want
    assert max(Counter(stored).values()) == 1
    assert daemon.signal() == 0, daemon.logs()
    # After the drain every partition is committed up to its end, and the store holds it.
    committed = _committed(kafka_broker)
    assert committed == {p: len(want) // PARTITIONS for p in range(PARTITIONS)}


def test_full_tmpfs_pauses_a_file_source_and_resumes_losing_nothing(tmp_path: Path) -> None:
    """The file source's checkpoint lives beside the store: a failed checkpoint write is
    retried, never a reason to stop the daemon. (Whether a checkpoint write lands in the
    full window depends on timing; tests/unit/test_pipeline_runner.py forces it.)"""
    logs = tmp_path / "logs"
    logs.mkdir()
    sources = (
        f'[[sources.files]]\npaths = ["{logs}/*.log"]\nlabels = {{ app = "tail" }}\n'
        "rescan_secs = 0.1\n"
    )
    daemon = _start_on_tmpfs(tmp_path, sources)
    try:
        inside = _inside(daemon, tmp_path / "store")
        t0 = time.time_ns()
        window = (t0 - 600 * 10**9, t0 + 600 * 10**9)

        def append(first: int, count: int) -> None:
            with (logs / "app.log").open("a") as f:
                f.writelines(
                    f"tail line {i:05d} with some padding\n" for i in range(first, first + count)
                )

        append(0, 500)
        wait_until(lambda: len(daemon.query_lines('{app="tail"}', *window)) == 500, 30, "500")
        ballast = _fill(inside)
        append(500, 1500)
        wait_until(lambda: daemon.ready()[0] == 503, 30, "/ready to report the full disk")
        assert "No space left on device" in daemon.ready()[1]
        time.sleep(1.5)  # several checkpoint attempts fail meanwhile
        assert daemon.proc is not None and daemon.proc.poll() is None, daemon.logs()
        ballast.unlink()
        wait_until(
            lambda: len(daemon.query_lines('{app="tail"}', *window)) >= 2000, 60, "every line"
        )
        append(2000, 500)  # the source still reads
        wait_until(
            lambda: len(daemon.query_lines('{app="tail"}', *window)) >= 2500, 30, "later lines"
        )
        wait_until(lambda: daemon.ready()[0] == 200, 30, "/ready to recover")
        stored = daemon.query_lines('{app="tail"}', *window)
        assert stored == [f"tail line {i:05d} with some padding" for i in range(2500)]
        assert daemon.signal() == 0, daemon.logs()
    finally:
        daemon.kill()
