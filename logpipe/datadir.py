"""Where the shared data lives: ``$LOGPIPE_SHARED_DATA``, else ``../shared/data``.

Why one function: training scripts, benchmarks and data tests all read the shared data by
path (it is never copied into the repo), and they must agree on where it is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir"]

_CHECKOUT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$LOGPIPE_SHARED_DATA``, else ``shared/data`` beside the checkout."""
    env = os.environ.get("LOGPIPE_SHARED_DATA")
    return Path(env) if env else _CHECKOUT.parent / "shared" / "data"
