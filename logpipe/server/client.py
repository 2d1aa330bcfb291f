"""A small client for a Loki-compatible API (``logpipe query --addr``) and for logpipe's own
``POST /api/v1/ask`` (``logpipe ask --addr``), on the standard library: the CLI should not
need an HTTP package for one request.

Times, steps and limits are sent as the user wrote them, so the server applies its own
(Loki's) parsing and defaults; the answer is the raw body, which the CLI prints unchanged
for ``--output json``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from logpipe.errors import LogpipeError, UsageError

__all__ = ["LokiClientError", "get", "post_json"]


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
    _check_addr(addr)
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{addr.rstrip('/')}{path}?{query}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    return _send(addr, request, tenant, timeout_s)


def post_json(
    addr: str,
    path: str,
    body: Mapping[str, object],
    *,
    tenant: str | None = None,
    timeout_s: float = 300.0,
) -> bytes:
    """``POST addr + path`` with a JSON body; the answer's body, errors as for :func:`get`."""
    _check_addr(addr)
    request = urllib.request.Request(
        f"{addr.rstrip('/')}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    return _send(addr, request, tenant, timeout_s)


def _check_addr(addr: str) -> None:
    parsed = urllib.parse.urlsplit(addr)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--addr {addr!r} must be an http:// or https:// URL")


def _send(
    addr: str, request: urllib.request.Request, tenant: str | None, timeout_s: float
) -> bytes:
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
