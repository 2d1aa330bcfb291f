"""``logpipe serve`` as a real process: tail, query, probes, drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logpipe.store import Store
from tests.conftest import REPO
from tests.serverutil import http

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
RANGE = {"start": str((T0 - 60) * 10**9), "end": str((T0 + 3600) * 10**9), "limit": "5000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def append(path: Path, first: int, count: int) -> None:
    with path.open("a") as f:
        for i in range(first, first + count):
            f.write(f"2023-11-14T22:{13 + i // 60 % 40:02d}:{i % 60:02d}Z INFO api request {i}\n")


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.store = tmp / "store"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp / "logpipe.toml"
        self.config.write_text(
            f'[store]\nroot = "{self.store}"\n'
            f'[[sources.files]]\npaths = ["{self.logs}/*.log"]\nlabels = {{ app = "api" }}\n'
            "rescan_secs = 0.1\n"
            "[pipeline]\nmax_batch_age_secs = 0.1\n"
            f"[server]\nport = {self.port}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe.cli", "serve", "--config", str(self.config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.communicate()[1].decode()
            try:
                if http(self.url + "/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("the daemon did not come up")

    def stop(self) -> tuple[int, str, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out.decode(), err.decode()

    def lines(self) -> list[str]:
        status, _, body = http(
            self.url + "/loki/api/v1/query_range",
            params={"query": '{app="api"}', "direction": "forward", **RANGE},
        )
        assert status == 200, body
        result = json.loads(body)["data"]["result"]
        return [line for stream in result for _, line in stream["values"]]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


def wait_for(predicate: object, timeout_s: float = 15.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_tails_queries_probes_and_drains(daemon: Daemon) -> None:
    log = daemon.logs / "app.log"
    append(log, 0, 50)
    daemon.start()
    wait_for(lambda: len(daemon.lines()) == 50)
    assert http(daemon.url + "/ready")[0] == 200
    assert http(daemon.url + "/live")[2] == b"live"
    append(log, 50, 25)
    wait_for(lambda: len(daemon.lines()) == 75)
    assert daemon.lines()[-1].endswith("request 74")
    metrics = http(daemon.url + "/metrics")[2].decode()
    assert 'logpipe_sink_lines_total{sink="store",source="files"} 75.0' in metrics
    assert "logpipe_http_requests_total" in metrics

    append(log, 75, 500)  # written just before SIGTERM: the drain must store all of it
    code, out, err = daemon.stop()
    assert code == 0, err
    assert "--addr " + daemon.url in out
    assert all(json.loads(line) for line in err.splitlines())  # JSON logs
    assert '"stopped cleanly"' in err

    # Nothing lost and nothing twice across the stop: restart and read again.
    store_lines = _stored(daemon.store)
    assert len(store_lines) == len(set(store_lines))
    daemon.start()
    wait_for(lambda: len(daemon.lines()) == 575)
    assert sorted(int(x.rsplit(" ", 1)[1]) for x in daemon.lines()) == list(range(575))
    assert daemon.stop()[0] == 0


def _stored(root: Path) -> list[str]:
    from logpipe.logql.engine import Engine

    result = Engine(Store(root)).query_range(
        '{app="api"}', start_ns=(T0 - 60) * 10**9, end_ns=(T0 + 3600) * 10**9,
        step_ns=10**9, tenant="fake", direction="forward", limit=5000,
    )  # fmt: skip
    from logpipe.logql.results import to_loki_json

    body = to_loki_json(result, {})
    return [v[1] for s in body["data"]["result"] for v in s["values"]]


def test_serve_rejects_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nprot = 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "logpipe.cli", "serve", "--config", str(bad)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert b"server.prot: unknown key" in proc.stderr
