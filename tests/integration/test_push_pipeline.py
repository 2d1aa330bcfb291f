"""Pushes to a daemon go through its pipeline: real sockets, real pipeline, real store.

``logpipe serve`` as a process: a push is answered 204 once stored, gets template ids
(the parse stage), counts as source ``push`` in the metrics and keeps its tenant. In
process (the API on a loopback socket over a real Pipeline whose sink we can hold): a
full push queue is refused with 429 and Retry-After, 503 when the store itself fails, and
a push queued too long is withdrawn (503) and never stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from logpipe.connectors.push import PushSource

from logpipe.parsing.miner import TemplateMiner
from logpipe.pipeline import BatchLimits, Pipeline, StoreSink, WriteResult
from logpipe.server.app import create_app
from logpipe.server.runner import BackgroundServer
from logpipe.store import Store
from tests.daemonproc import ServeProcess, free_port, wait_until
from tests.serverutil import http

T0 = 1_700_000_000 * 10**9


def _push(
    url: str, lines: list[str], tenant: str | None = None, first_ns: int = T0
) -> tuple[int, dict[str, str], bytes]:
    body = {
        "streams": [
            {
                "stream": {"app": "pushed"},
                "values": [[str(first_ns + i), line] for i, line in enumerate(lines)],
            }
        ]
    }
    headers = {"Content-Type": "application/json"}
    if tenant is not None:
        headers["X-Scope-OrgID"] = tenant
    data = json.dumps(body).encode()
    status, reply_headers, reply = http(
        url + "/loki/api/v1/push", method="POST", data=data, headers=headers
    )
    return status, {k.lower(): v for k, v in reply_headers.items()}, reply


def _query(url: str, tenant: str | None = None) -> list[str]:
    params = {"query": '{app="pushed"}', "start": str(T0 - 10**9), "end": str(T0 + 10**12),
              "direction": "forward", "limit": "5000"}  # fmt: skip
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    status, _, body = http(url + "/loki/api/v1/query_range", params=params, headers=headers)
    assert status == 200, body
    return [v[1] for s in json.loads(body)["data"]["result"] for v in s["values"]]


def test_serve_stores_pushes_through_its_pipeline(tmp_path: Path) -> None:
    port = free_port()
    store = tmp_path / "store"
    config = tmp_path / "logpipe.toml"
    config.write_text(
        f'[store]\nroot = "{store}"\n[pipeline]\nmax_batch_age_secs = 0.05\n'
        f"[server]\nport = {port}\n"
    )
    daemon = ServeProcess(config, port, tmp_path)
    daemon.start()
    try:
        lines = [f"user {i} paid {i * 3} EUR" for i in range(200)]
        assert _push(daemon.url, lines[:120])[0] == 204  # answered once stored
        assert _query(daemon.url) == lines[:120]
        assert _push(daemon.url, lines[120:], tenant="acme")[0] == 204
        assert _query(daemon.url, "acme") == lines[120:]
        assert _query(daemon.url) == lines[:120]  # tenants stay apart
        status, _, body = _push(daemon.url, ["year 2116"], first_ns=1 << 62)
        assert status == 400 and b"timestamp_out_of_range: 1" in body
        assert daemon.metric("logpipe_source_lines_total", source="push") == 200
        assert daemon.metric("logpipe_sink_lines_total", source="push", sink="store") == 200
        assert daemon.signal() == 0, daemon.logs()
    finally:
        daemon.kill()
    # the parse stage saw them: their template is in its checkpoint
    state = TemplateMiner.load(store / "_checkpoints" / "templates.json")
    assert "user <*> paid <*> EUR" in {c.template for c in state.clusters()}


class _HeldSink:
    """A store sink that waits for ``release`` before each write, or fails while
    ``failing`` is set (a full disk)."""

    def __init__(self, store: Store) -> None:
        self.name = "store"
        self.inner = StoreSink(store)
        self.release = threading.Event()
        self.failing = threading.Event()
        self.entered = threading.Event()

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        return self.inner.resume_offset(key)

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        self.entered.set()
        if self.failing.is_set():
            raise OSError(28, "No space left on device")
        self.release.wait(30)
        return self.inner.write(key, table, span)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[str, _HeldSink, Pipeline, Store]]:
    store = Store(tmp_path)
    sink = _HeldSink(store)
    source = PushSource(max_queued_bytes=200)
    pipe = Pipeline([source], [], [sink], limits=BatchLimits(max_age_s=0.01), queue_chunks=1)
    app = create_app(store, health=pipe.health, push=source, push_timeout_s=1.0)
    pipe.start()
    with BackgroundServer(app) as server:
        wait_until(lambda: _push(server.url, [])[0] == 204, 10, "the server")
        yield server.url, sink, pipe, store
        sink.release.set()
        sink.failing.clear()
        pipe.stop()
        assert pipe.join(30)


class _Flood:
    """Pushes of one line each, one thread per push, until one is refused at once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def _one(self, line: str) -> None:
        answer = _push(self.url, [line])
        with self.lock:
            self.answers[line] = answer

    def until_refused(self, prefix: str, timeout_s: float = 10.0) -> tuple[int, dict[str, str]]:
        deadline = time.monotonic() + timeout_s
        i = 0
        while time.monotonic() < deadline:
            line = f"{prefix} {i:03d} " + "x" * 50
            i += 1
            t = threading.Thread(target=self._one, args=(line,))
            t.start()
            self.threads.append(t)
            time.sleep(0.05)
            with self.lock:
                refused = [a for a in self.answers.values() if a[0] in (429, 503)]
                quick = [a for a in refused if b"push queue full" in a[2]]
            if quick:
                return quick[0][0], quick[0][1]
        raise AssertionError(f"no push was refused: {self.answers}")

    def join(self) -> dict[str, int]:
        for t in self.threads:
            t.join(30)
        return {line: a[0] for line, a in self.answers.items()}


def _stored(store: Store) -> list[bytes]:
    return [x for b in store.read("fake", direction="forward") for x in b["line"].to_pylist()]


def test_a_full_push_queue_is_refused_429_with_retry_after(
    held: tuple[str, _HeldSink, Pipeline, Store],
) -> None:
    url, sink, pipe, store = held
    flood = _Flood(url)
    status, headers = flood.until_refused("busy")
    assert status == 429 and headers["retry-after"] == "1"
    assert pipe.health.snapshot().ready  # busy, not broken
    sink.release.set()
    answers = flood.join()
    assert set(answers.values()) <= {204, 429, 503}
    # exactly the pushes answered 204 are stored, once each; refused ones never are
    ok = sorted(line.encode() for line, code in answers.items() if code == 204)
    assert ok and sorted(_stored(store)) == ok


def test_a_failing_store_turns_a_full_queue_into_503_and_stale_pushes_are_withdrawn(
    held: tuple[str, _HeldSink, Pipeline, Store],
) -> None:
    url, sink, pipe, store = held
    sink.failing.set()
    flood = _Flood(url)
    status, headers = flood.until_refused("failing")
    assert status == 503 and headers["retry-after"] == "1"
    assert not pipe.health.snapshot().ready
    time.sleep(1.2)  # queued pushes outlive push_timeout_s: withdrawn
    with flood.lock:
        withdrawn = [a for a in flood.answers.values() if b"not stored within 1 s" in a[2]]
    assert withdrawn and all(a[0] == 503 and a[1]["retry-after"] == "5" for a in withdrawn)
    sink.failing.clear()
    sink.release.set()
    answers = flood.join()
    ok = sorted(line.encode() for line, code in answers.items() if code == 204)
    assert ok and sorted(_stored(store)) == ok
