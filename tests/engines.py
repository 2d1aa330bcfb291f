"""Test doubles around the LogQL engine, shared by the ask tests (library and HTTP)."""

from __future__ import annotations

from typing import Any

from logpipe.logql.engine import Engine
from logpipe.logql.results import QueryResult
from logpipe.store import Store


class RecordingEngine:
    """The real engine, recording every query that reaches it: the ask tests assert that
    only validated queries are ever executed."""

    def __init__(self, store: Store) -> None:
        self.inner = Engine(store)
        self.queries: list[str] = []

    def query_range(self, query: str, **kwargs: Any) -> QueryResult:
        self.queries.append(query)
        return self.inner.query_range(query, **kwargs)

    def query_instant(self, query: str, **kwargs: Any) -> QueryResult:
        self.queries.append(query)
        return self.inner.query_instant(query, **kwargs)
