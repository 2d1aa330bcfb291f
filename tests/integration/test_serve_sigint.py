"""Ctrl-C: ``logpipe serve`` drains and exits 0 on SIGINT, and ``make run`` on a terminal
ends cleanly (exit 0, no "Interrupt" from make) when Ctrl-C is typed."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.daemonproc import ServeProcess, free_port, wait_until
from tests.serverutil import http

T0 = 1_700_000_000


def _append(path: Path, first: int, n: int) -> None:
    with path.open("a") as f:
        f.writelines(f"2023-11-14T22:13:20Z INFO request {i}\n" for i in range(first, first + n))


def test_serve_drains_and_exits_0_on_sigint(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    config = tmp_path / "logpipe.toml"
    config.write_text(
        f'[store]\nroot = "{tmp_path / "store"}"\n'
        f'[[sources.files]]\npaths = ["{logs}/*.log"]\nlabels = {{ app = "int" }}\n'
        "rescan_secs = 0.1\n"
        f"[server]\nport = {port}\n"
    )
    daemon = ServeProcess(config, port, tmp_path)
    daemon.start()
    try:
        _append(logs / "a.log", 0, 100)
        window = ((T0 - 60) * 10**9, (T0 + 60) * 10**9)
        wait_until(lambda: len(daemon.query_lines('{app="int"}', *window)) == 100, 20, "100")
        _append(logs / "a.log", 100, 400)  # just before Ctrl-C: the drain must keep it
        time.sleep(0.3)  # read by the tail (rescan 0.1 s), maybe not yet written
        assert daemon.signal(signal.SIGINT) == 0, daemon.logs()
    finally:
        daemon.kill()
    messages = [r["msg"] for r in daemon.log_records()]
    assert "draining" in messages and messages[-1] == "stopped cleanly"
    restarted = ServeProcess(config, port, tmp_path)  # read back what the drain stored
    restarted.start()
    try:
        wait_until(lambda: len(restarted.query_lines('{app="int"}', *window)) == 500, 20, "500")
        assert restarted.signal(signal.SIGINT) == 0
    finally:
        restarted.kill()


def _read_until(fd: int, done: bytes, timeout_s: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout_s
    while done not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
    return out


def test_make_run_ends_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    for tool in ("make", "setsid", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    shim = tmp_path / "bin"  # stands for .venv/bin: this checkout's logpipe, this Python
    shim.mkdir()
    (shim / "logpipe").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m logpipe.cli "$@"\n')
    (shim / "logpipe").chmod(0o755)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), LOGPIPE_SERVER__PORT=str(port),
               LOGPIPE_STORE__ROOT=str(tmp_path / "store"))  # fmt: skip
    master, slave = os.openpty()
    # setsid -c: a new session whose controlling terminal is the pty, as a login shell has;
    # -o: the install stamp counts as done (the test runs in this checkout's environment)
    proc = subprocess.Popen(
        ["setsid", "-c", "make", "-s", "-o", ".venv/.installed", "run", f"BIN={shim}"],
        cwd=REPO,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    try:
        out = _read_until(master, b"Stop with Ctrl-C", 30)
        assert b"Stop with Ctrl-C" in out, out.decode(errors="replace")
        assert http(f"http://127.0.0.1:{port}/live")[0] == 200
        os.write(master, b"\x03")  # Ctrl-C, as typed
        out += _read_until(master, b"stopped cleanly", 30)
        code = proc.wait(30)
        out += _read_until(master, b"\0", 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert code == 0, text[-3000:]
    assert "stopped cleanly" in text and "Interrupt" not in text and "***" not in text
