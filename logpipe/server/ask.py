"""``POST /api/v1/ask``: a question in plain English, answered with validated LogQL.

Request (JSON object; unknown keys are refused, so a misspelt option is never silently
ignored)::

    {"question": "how many failed logins per host in the last hour?",
     "candidates": 4, "dry_run": false, "backend": "auto", "explain": false,
     "since": "1h", "end": "2024-05-01T12:00:00Z", "limit": 100}

Only ``question`` is required. Response (200, for an answer and for "cannot answer"
alike: both are answers)::

    {"question", "status": "answered" | "cannot_answer", "query", "explanation",
     "closest_query"?, "result"? (Loki's query JSON), "backend", "backend_note", "seconds"}

plus ``candidates``, ``context`` and ``timings`` with ``"explain": true``. The tenant is
``X-Scope-OrgID``'s. A body that is not valid JSON is 400 with the line and column of the
error; a field of the wrong type or out of range is 400 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from logpipe.errors import UsageError
from logpipe.logql.units import parse_duration
from logpipe.nl.ask import MAX_CANDIDATES, AskRequest
from logpipe.server.params import parse_time

__all__ = ["ASK_DOC", "MAX_ASK_BODY_BYTES", "AskBodyError", "parse_ask_body"]

MAX_ASK_BODY_BYTES = 64 * 1024
_FIELDS = ("question", "candidates", "dry_run", "backend", "explain", "since", "end", "limit")


class AskBodyError(UsageError):
    """A request body that cannot be used: which field (or where in the body), and what to
    do (HTTP 400)."""

    def __init__(self, name: str, problem: str) -> None:
        where = "invalid body" if name == "body" else f'invalid field "{name}"'
        super().__init__(f"{where}: {problem}")
        self.name = name


def _json_error(exc: json.JSONDecodeError) -> AskBodyError:
    return AskBodyError(
        "body",
        f"invalid JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos}): {exc.msg}",
    )


def _int(data: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AskBodyError(name, f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _bool(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise AskBodyError(name, f"must be true or false, got {value!r}")
    return value


def parse_ask_body(raw: bytes, tenant: str, now_ns: int) -> tuple[AskRequest, bool]:
    """The request a body asks for, and whether it wants the details (``explain``)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AskBodyError("body", f"not UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise _json_error(exc) from None
    if not isinstance(data, dict):
        raise AskBodyError("body", 'must be a JSON object such as {"question": "..."}')
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise AskBodyError(unknown[0], f"unknown field; the fields are {', '.join(_FIELDS)}")
    question = data.get("question")
    if not isinstance(question, str):
        raise AskBodyError("question", "missing or not a string; ask something about the logs")
    backend = data.get("backend", "auto")
    if not isinstance(backend, str):
        raise AskBodyError("backend", f"must be a string, got {backend!r}")
    since_ns = AskRequest.since_ns
    if "since" in data:
        since = data["since"]
        try:
            since_ns = parse_duration(str(since).strip()) if isinstance(since, str) else -1
        except ValueError:
            since_ns = -1
        if since_ns <= 0:
            raise AskBodyError("since", f"must be a duration such as 1h, got {since!r}")
    end = data.get("end")
    if end is not None and (isinstance(end, bool) or not isinstance(end, str | int | float)):
        raise AskBodyError("end", f"must be a time (RFC3339 or unix seconds), got {end!r}")
    request = AskRequest(
        question=question,
        tenant=tenant,
        candidates=_int(data, "candidates", AskRequest.candidates, 1, MAX_CANDIDATES),
        dry_run=_bool(data, "dry_run"),
        backend=backend,
        end_ns=parse_time(str(end), now_ns, "end") if end is not None else now_ns,
        since_ns=since_ns,
        limit=_int(data, "limit", AskRequest.limit, 1, 5000),
    )
    return request, _bool(data, "explain")


ASK_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["question"],
                    "additionalProperties": False,
                    "properties": {
                        "question": {"type": "string", "maxLength": 1000},
                        "candidates": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_CANDIDATES,
                        },
                        "dry_run": {"type": "boolean"},
                        "backend": {"type": "string", "enum": ["auto", "model", "retrieval"]},
                        "explain": {"type": "boolean"},
                        "since": {"type": "string", "example": "1h"},
                        "end": {"type": "string", "example": "2024-05-01T12:00:00Z"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
                    },
                    "example": {"question": "how many failed logins per host in the last hour?"},
                }
            }
        },
    },
    "responses": {
        "200": {"description": "answered, or cannot_answer with the closest known query"},
        "400": {"description": "bad body (with the line and column) or a bad field"},
    },
}
