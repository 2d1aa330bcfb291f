"""``logpipe ingest``, ``logpipe query`` (local and --addr) and ``logpipe server``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logpipe.cli import main
from logpipe.server import create_app
from logpipe.server.runner import BackgroundServer
from logpipe.store import Store
from tests.conftest import REPO
from tests.serverutil import http

S = 1_000_000_000
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
RANGE = ["--from", str(T0 - 60), "--to", str(T0 + 3600)]


def write_log(path: Path) -> Path:
    """ISO-stamped lines, a stack trace continuation, CRLF endings, and a fixed mtime."""
    lines = [
        "2023-11-14T22:13:20Z INFO api started",
        "2023-11-14T22:13:21.5Z ERROR api request failed",
        "Traceback (most recent call last):",
        "2023-11-14T22:13:25Z INFO api request ok",
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    os.utime(path, (T0 - 100, T0 - 100))
    return path


@pytest.fixture
def store_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    log = write_log(tmp_path / "app.log")
    store = tmp_path / "store"
    args = ["ingest", str(log), "--store", str(store), "--labels", '{app="api"}', "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["lines"], report["stored"], report["labels"]) == (4, 4, '{app="api"}')
    assert report["files"][0]["time_filled"] == 1  # the traceback line took its header's time
    return store


def test_ingest_stores_lines_with_their_timestamps(store_dir: Path) -> None:
    rows = [
        (ts, line)
        for batch in Store(store_dir).read("fake", direction="forward")
        for ts, line in zip(
            batch["ts"].cast("int64").to_pylist(), batch["line"].to_pylist(), strict=True
        )
    ]
    assert rows == [
        (T0 * S, b"2023-11-14T22:13:20Z INFO api started"),
        (T0 * S + 1_500_000_000, b"2023-11-14T22:13:21.5Z ERROR api request failed"),
        (T0 * S + 1_500_000_000, b"Traceback (most recent call last):"),
        ((T0 + 5) * S, b"2023-11-14T22:13:25Z INFO api request ok"),
    ]


def test_ingest_with_a_format_and_a_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "hdfs.log"
    log.write_text(
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: closing block\nno header here\n"
    )
    store = tmp_path / "store"
    assert main(["ingest", str(log), "--store", str(store), "--labels", "{app='x'}"]) == 2
    assert (
        main(
            [
                "ingest",
                str(log),
                "--store",
                str(store),
                "--labels",
                '{app="hdfs"}',
                "--log-format",
                "HDFS",
                "--tenant",
                "t1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "hdfs.log" in out and "stored" in out
    batches = list(Store(store).read("t1", direction="forward"))
    ts = [t for b in batches for t in b["ts"].cast("int64").to_pylist()]
    assert ts == [1_226_262_975 * S] * 2  # 2008-11-09 20:36:15 UTC; line 2 carried
    assert Store(store).stats("fake").entries == 0
    assert (
        main(
            [
                "ingest",
                str(log),
                "--store",
                str(store),
                "--labels",
                '{a="b"}',
                "--log-format",
                "NoSuchPreset",
            ]
        )
        == 2
    )
    assert (
        main(["ingest", str(log), "--store", str(store), "--labels", '{a="b"}', "--tenant", "a/b"])
        == 2
    )


def test_query_json_is_exactly_the_api_body(
    store_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = '{app="api"} |= "request"'
    assert main(["query", query, "--store", str(store_dir), *RANGE, "--output", "json"]) == 0
    local = capsys.readouterr().out.encode()
    with BackgroundServer(create_app(Store(store_dir))) as server:
        params = {
            "query": query,
            "start": str(T0 - 60),
            "end": str(T0 + 3600),
            "limit": "100",
            "direction": "backward",
        }
        status, _, api_body = http(server.url + "/loki/api/v1/query_range", params=params)
        assert status == 200
        assert main(["query", query, "--addr", server.url, *RANGE, "--output", "json"]) == 0
        remote = capsys.readouterr().out.encode()
        assert main(["query", "{app=", "--addr", server.url]) == 2
        assert "parse error at line 1" in capsys.readouterr().err
    assert local == remote == api_body + b"\n"
    values = json.loads(local)["data"]["result"][0]["values"]
    assert [line for _, line in values] == [
        "2023-11-14T22:13:25Z INFO api request ok",
        "2023-11-14T22:13:21.5Z ERROR api request failed",
    ]


def test_query_outputs(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["query", '{app="api"}', "--store", str(store_dir), *RANGE, "--direction", "forward"]
    assert main([*base, "--output", "raw", "--limit", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2023-11-14T22:13:20Z INFO api started",
        "2023-11-14T22:13:21.5Z ERROR api request failed",
    ]
    assert main([*base, "--output", "jsonl", "--limit", "1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "ts": str(T0 * S),
        "time": "2023-11-14T22:13:20Z",
        "labels": {"app": "api"},
        "line": "2023-11-14T22:13:20Z INFO api started",
    }
    assert main([*base, "--output", "table"]) == 0
    table = capsys.readouterr().out
    assert "4 entries from 1 streams" in table and "api started" in table
    metric = [
        "query",
        'count_over_time({app="api"}[1h])',
        "--store",
        str(store_dir),
        "--instant",
        "--to",
        str(T0 + 60),
    ]
    assert main([*metric, "--output", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == "4"
    assert main([*metric, "--output", "table"]) == 0
    assert '{app="api"}' in capsys.readouterr().out
    assert main(["query", '{app="api"}', "--store", str(store_dir), "--addr", "http://x"]) == 2
    assert main(["query", '{app="api"}', "--store", str(store_dir), "--from", "noon"]) == 2


def test_query_addr_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        assert main(["query", '{a="b"}', "--addr", f"http://127.0.0.1:{port}"]) == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["server", "ingest", "query"])
def test_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and f"logpipe {command}" in out


def test_server_command_serves_until_terminated(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logpipe.cli",
            "server",
            "--store",
            str(tmp_path / "s"),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, body = http(f"http://127.0.0.1:{port}/ready")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert (status, body) == (200, b"ready")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    # uvicorn drains, then re-raises the signal so the exit status says what stopped it
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert b"Traceback" not in err


def test_cli_version_does_not_import_the_server() -> None:
    code = (
        "import sys; from logpipe.cli import main; main(['--version']); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'logpipe.server.app') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        check=True,
    ).stdout
    assert out.splitlines()[-1] == "[]"
