"""Shared fixtures: where the shared corpora live, and skipping data tests without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logpipe.datadir import shared_data_dir

REPO = Path(__file__).resolve().parents[1]

# The committed NL2LogQL adapter makes `ask`'s auto backend load a 540 MB model; tests (and
# the servers and CLIs they start, which inherit this) use retrieval unless they name the
# model or an adapter themselves.
os.environ.setdefault("LOGPIPE_NL2LOGQL_ADAPTER", "none")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir().resolve()
    if not (path / "loghub-2k").is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
