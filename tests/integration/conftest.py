"""Fixtures of the integration suites: the Kafka broker (see tests/kafka_broker.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_broker import Broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the whole session; tests use topics of their own."""
    broker = Broker(tmp_path_factory.mktemp("noida"))
    broker.up()
    yield broker
    broker.down()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker for one test that restarts it."""
    broker = Broker(tmp_path / "noida")
    broker.up()
    yield broker
    broker.down()
