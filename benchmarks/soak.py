"""The RSS soak of ``python -m benchmarks.streaming --soak-secs N``.

Why a real ``logpipe serve`` process and a steady rate: the question is whether the daemon
operators run holds its memory flat under continuous load (bounded queues, bounded miner,
manifest cache, metrics), so it is that process, with its default stages (parse on), whose
resident set is sampled from ``/proc/<pid>/status`` every few seconds while a producer in
this process sends lines at a fixed rate (a rate the daemon sustains, so what is measured
is steady state, not a growing backlog). Reported: the mean RSS of the first and of the
last minute (or quarter, for short runs), the least-squares slope after the first window
in MiB per minute, whether every produced line was stored by the end, and the store's
segment count and manifest size at the end: ``manifest.json`` (what every flush rewrites)
and with its sealed chunk files (every entry; all of them are held in memory).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.common import REPO, env_with_repo
from logpipe.store import Store

__all__ = ["SoakResult", "run_soak"]

PARTITIONS = 4


@dataclass(frozen=True)
class SoakResult:
    secs: float
    rate: int
    produced: int
    stored: int
    samples: int
    window_s: float
    first_mib: float
    last_mib: float
    peak_mib: float
    slope_mib_per_min: float
    segments: int
    manifest_mib: float
    manifest_total_mib: float

    def as_json(self) -> dict[str, object]:
        return {
            "soak_secs": round(self.secs),
            "soak_rate_lines_per_s": self.rate,
            "soak_produced": self.produced,
            "soak_stored": self.stored,
            "rss_first_window_mib": round(self.first_mib, 1),
            "rss_last_window_mib": round(self.last_mib, 1),
            "rss_peak_mib": round(self.peak_mib, 1),
            "rss_slope_mib_per_min": round(self.slope_mib_per_min, 3),
            "rss_window_s": round(self.window_s),
            "store_segments": self.segments,
            "manifest_mib": round(self.manifest_mib, 2),
            "manifest_total_mib": round(self.manifest_total_mib, 2),
        }


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        body: bytes = r.read()
    return body.decode()


def _stored(url: str) -> int:
    total = 0.0
    for line in _get(url + "/metrics").splitlines():
        if line.startswith("logpipe_sink_lines_total{") and 'sink="store"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _producer(
    bootstrap: str, lines: list[bytes], rate: int, stop: threading.Event, sent: list[int]
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 << 10)
    tick = 0.1
    per_tick = max(1, round(rate * tick))
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        for _ in range(per_tick):
            producer.send("soak", value=lines[i % len(lines)], partition=i % PARTITIONS)
            i += 1
        sent[0] = i
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush()
    producer.close()
    sent[0] = i


def run_soak(
    bootstrap: str, lines: list[bytes], *, secs: float, rate: int, workdir: Path, port: int
) -> SoakResult:
    """Run the daemon for ``secs`` under ``rate`` lines/s and sample its RSS."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("soak", num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    config = workdir / "soak.toml"
    config.write_text(
        f'[store]\nroot = "{workdir / "soak-store"}"\n'
        f'[[sources.kafka]]\nbootstrap = "{bootstrap}"\ntopics = ["soak"]\ngroup = "soak"\n'
        'labels = { app = "soak" }\npayload = "text"\n'
        f'[server]\nport = {port}\n[logging]\nlevel = "warning"\n'
    )
    url = f"http://127.0.0.1:{port}"
    with (workdir / "soak-daemon.log").open("wb") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "logpipe.cli", "serve", "--config", str(config), "--quiet"],
            cwd=REPO,
            env=env_with_repo(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/live")
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the soak daemon did not start") from None
                time.sleep(0.1)
        stop, sent = threading.Event(), [0]
        producing = threading.Thread(target=_producer, args=(bootstrap, lines, rate, stop, sent))
        t0 = time.monotonic()
        producing.start()
        samples: list[tuple[float, float]] = []
        every = 2.0 if secs < 120 else 5.0
        while (now := time.monotonic() - t0) < secs:
            samples.append((now, _rss_mib(daemon.pid)))
            if daemon.poll() is not None:
                raise SystemExit(f"the soak daemon exited {daemon.returncode}")
            time.sleep(every)
        stop.set()
        producing.join()
        wait_until = time.monotonic() + 120
        while _stored(url) < sent[0] and time.monotonic() < wait_until:
            time.sleep(0.5)
        stored = _stored(url)
        daemon.send_signal(signal.SIGTERM)
        if daemon.wait(120) != 0:
            raise SystemExit(f"the soak daemon exited {daemon.returncode} on SIGTERM")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    store = Store(workdir / "soak-store")
    segments = len(store.manifest("fake").segments)
    manifest = workdir / "soak-store" / "tenants" / "fake" / "manifest.json"
    chunks = sum(p.stat().st_size for p in manifest.parent.glob("manifest/*.json"))
    window = min(60.0, secs / 4)
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    first = rss[t < window]
    last = rss[t >= secs - window]
    steady = t >= window
    slope = float(np.polyfit(t[steady] / 60, rss[steady], 1)[0]) if steady.sum() >= 3 else 0.0
    return SoakResult(
        secs=secs,
        rate=rate,
        produced=sent[0],
        stored=stored,
        samples=len(samples),
        window_s=window,
        first_mib=float(first.mean()),
        last_mib=float(last.mean()),
        peak_mib=float(rss.max()),
        slope_mib_per_min=slope,
        segments=segments,
        manifest_mib=manifest.stat().st_size / (1 << 20),
        manifest_total_mib=(manifest.stat().st_size + chunks) / (1 << 20),
    )
