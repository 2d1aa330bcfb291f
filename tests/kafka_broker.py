"""A throwaway Kafka-protocol broker (noida-db, DESIGN.md §5) for the ``kafka`` tests.

Why a real broker and not a mock: the guarantees under test (commit after durable write,
rebalance, reconnect after a broker restart) live in the protocol exchanges a mock would
have to re-invent. ``noida-db`` starts in well under a second; the fixtures never install
it, they skip with the install command when it is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

__all__ = ["Broker", "noida_binary"]


def noida_binary() -> str | None:
    """``noida-db`` beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "noida-db"
    return str(beside) if beside.is_file() else shutil.which("noida-db")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One broker on a free loopback port with its data in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        binary = noida_binary()
        if binary is None:
            pytest.skip("noida-db is not installed (pip install noida-db==0.2.3, DESIGN.md §5)")
        self.binary = binary
        self.data_dir = data_dir
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [self.binary, *args, "--data-dir", str(self.data_dir)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def up(self) -> None:
        self._run("up", "--only", "kafka", "--host", "127.0.0.1", "--kafka-port", str(self.port))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def down(self) -> None:
        self._run("down")

    def create_topic(
        self, name: str, partitions: int, configs: dict[str, str] | None = None
    ) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        topic = NewTopic(
            name, num_partitions=partitions, replication_factor=1, topic_configs=configs or {}
        )
        try:
            admin.create_topics([topic])
        finally:
            admin.close()
