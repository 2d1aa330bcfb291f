"""Evaluating LogQL over the log store (being implemented; see the class docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from logpipe.logql.results import QueryResult
from logpipe.store import DEFAULT_TENANT, Store

__all__ = ["Engine", "QueryLimits"]

_HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class QueryLimits:
    """Loki's per-query limits, with Loki's defaults."""

    max_entries: int = 5000  # max_entries_limit_per_query
    max_series: int = 500  # max_query_series
    max_range_ns: int = 721 * _HOUR_NS  # max_query_length
    max_points: int = 11_000  # points per series (Loki's resolution limit)
    timeout_s: float = 60.0


class Engine:
    """LogQL queries over a :class:`~logpipe.store.Store`, with Loki's semantics."""

    def __init__(self, store: Store, *, limits: QueryLimits | None = None) -> None:
        self.store = store
        self.limits = limits or QueryLimits()

    def query_range(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int | None = None,
        tenant: str = DEFAULT_TENANT,
        direction: str = "backward",
        limit: int = 100,
    ) -> QueryResult:
        raise NotImplementedError

    def query_instant(
        self,
        query: str,
        *,
        time_ns: int,
        tenant: str = DEFAULT_TENANT,
        direction: str = "backward",
        limit: int = 100,
    ) -> QueryResult:
        raise NotImplementedError
