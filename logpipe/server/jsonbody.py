"""The bytes of a JSON response body.

Why one function: ``logpipe query --output json`` promises exactly the API's body, so the
server and the CLI must serialise the same dict the same way (compact separators, UTF-8
kept as is rather than ``\\u`` escapes, as Go's encoder writes it).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["encode_body"]


def encode_body(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
