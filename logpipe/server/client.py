"""A small client for a Loki-compatible API (``logpipe query --addr``), on the standard
library: the CLI should not need an HTTP package for one GET.

Times, steps and limits are sent as the user wrote them, so the server applies its own
(Loki's) parsing and defaults; the answer is the raw body, which the CLI prints unchanged
for ``--output json``.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from logpipe.errors import LogpipeError, UsageError

__all__ = ["LokiClientError", "get"]


class LokiClientError(LogpipeError):
    """The server could not be reached or answered with an error (its message included)."""


def get(
    addr: str,
    path: str,
    params: Mapping[str, str | None],
    *,
    tenant: str | None = None,
    timeout_s: float = 60.0,
) -> bytes:
    """``GET addr + path?params`` (None values left out); the body of a 2xx answer.

    A 4xx answer raises :class:`UsageError` (the request was wrong: exit code 2), anything
    else :class:`LokiClientError`; both carry the server's message.
    """
    parsed = urllib.parse.urlsplit(addr)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--addr {addr!r} must be an http:// or https:// URL")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{addr.rstrip('/')}{path}?{query}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if tenant is not None:
        request.add_header("X-Scope-OrgID", tenant)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        message = exc.read().decode("utf-8", "replace").strip() or exc.reason
        error = UsageError if 400 <= exc.code < 500 else LokiClientError
        raise error(f"{addr} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LokiClientError(f"cannot reach {addr}: {reason}") from None
