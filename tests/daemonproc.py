"""``logpipe serve`` as a real child process, for the tests that need one.

Why a process and not the :class:`~logpipe.daemon.Daemon` object in the test's own process:
these tests kill it, signal it, run it in another mount namespace, and read its exit code,
its JSON logs and its HTTP API over a real loopback socket, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.conftest import REPO
from tests.serverutil import http

__all__ = ["ServeProcess", "free_port", "wait_until"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``cond`` every 50 ms; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


class ServeProcess:
    """One ``logpipe serve --config CONFIG`` run; ``wrapper`` prefixes the command (e.g.
    ``unshare ... sh -c ...``). Output goes to files (a full pipe would block the daemon)."""

    def __init__(
        self,
        config: Path,
        port: int,
        workdir: Path,
        *,
        wrapper: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = workdir / "serve.out"
        self.stderr_path = workdir / "serve.err"
        self.wrapper = list(wrapper)
        self.env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> None:
        cmd = [*self.wrapper, sys.executable, "-m", "logpipe.cli", "serve"]
        cmd += ["--config", str(self.config), "--quiet"]
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=out, stderr=err)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited {self.proc.returncode}:\n{self.logs()}")
            try:
                return http(self.url + "/live")[0] == 200
            except OSError:
                return False

        wait_until(up, timeout_s, "the daemon's /live")

    def signal(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:]

    def log_records(self) -> list[dict[str, object]]:
        """The daemon's JSON log lines (every stderr line must be one)."""
        text = self.stderr_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def ready(self) -> tuple[int, str]:
        status, _, body = http(self.url + "/ready")
        return status, body.decode(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
        body = http(self.url + "/metrics")[2].decode()
        total = 0.0
        for line in body.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += float(value)
        return total

    def query_lines(self, selector: str, start_ns: int, end_ns: int) -> list[str]:
        """Every line of ``selector`` in the range, oldest first (at most 5000, Loki's
        default entry limit: the tests stay below it)."""
        params = {
            "query": selector,
            "direction": "forward",
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": "5000",
        }
        status, _, body = http(self.url + "/loki/api/v1/query_range", params=params)
        assert status == 200, body
        result = json.loads(body)["data"]["result"]
        values = [v for stream in result for v in stream["values"]]
        values.sort(key=lambda v: int(v[0]))
        return [line for _, line in values]
