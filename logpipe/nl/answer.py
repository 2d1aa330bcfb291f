"""Never trust raw output: model candidates -> parse, validate, repair -> execute -> choose.

A generator (the LM, or any stub with the same method) proposes N candidate replies. Each is
cut down to its query (:func:`~logpipe.nl.repair.extract_query`), parsed and validated by
our LogQL parser; one that fails gets the light text repairs, one by one and then all
together, and is parsed again; one that parses gets its selector moved to known label names
and values, and (given a grounder) its line filters that match no line of the store put on
the store's own text (:mod:`logpipe.nl.ground`). What still fails is rejected with the
parser's message. Valid candidates are merged by their normalised query (votes), the most
voted are executed, and the answer is the candidate that returns data, then the most voted,
then the earliest. When no candidate validates the answer is "cannot answer", with the
closest valid query we know (from a fallback such as the retrieval baseline) for the user to
start from — never an invented one.

Only queries that passed :func:`~logpipe.logql.parse_query` are ever executed, and only
queries that read logs (a valid ``3`` or ``vector(1)`` would be an invented answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from logpipe.errors import LogQLError
from logpipe.logql import ast, format_query, parse_query
from logpipe.logql.results import Matrix, QueryResult, Scalar, Streams, Vector
from logpipe.nl.explain import explain
from logpipe.nl.normalise import canonical
from logpipe.nl.prompt import Prompt
from logpipe.nl.repair import (
    TEXT_REPAIRS,
    count_of_unset_groups,
    drop_unwrap_errors,
    extract_query,
    repair_labels,
    window_from_question,
)
from logpipe.nl.tree import walk

__all__ = [
    "Answer",
    "Candidate",
    "ExecOutcome",
    "Generator",
    "Grounder",
    "QueryRunner",
    "answer",
    "engine_executor",
    "explain",
    "has_data",
    "validate_candidate",
]


class Generator(Protocol):
    """Anything that turns a prompt into ``n`` candidate replies (the LM, a stub, ...)."""

    def generate(self, prompt: Prompt, n: int) -> list[str]: ...


class QueryRunner(Protocol):
    """What executing needs of an engine: :class:`~logpipe.logql.engine.Engine`'s calls."""

    def query_range(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int | None = None,
        tenant: str = ...,
        direction: str = ...,
        limit: int = ...,
    ) -> QueryResult: ...

    def query_instant(self, query: str, *, time_ns: int, tenant: str = ..., direction: str = ...,
                      limit: int = ...) -> QueryResult: ...  # fmt: skip


@dataclass
class ExecOutcome:
    """What running a query gave: a result with or without data, or an error."""

    result: QueryResult | None
    has_data: bool
    error: str | None = None


Executor = Callable[[str], ExecOutcome]


@dataclass
class Candidate:
    """One model reply and what became of it."""

    raw: str
    text: str = ""  # the query text after extraction and text repairs
    query: str | None = None  # canonical query, when valid
    expr: ast.Expr | None = field(default=None, repr=False)
    repairs: list[str] = field(default_factory=list)
    error: str | None = None
    votes: int = 1
    outcome: ExecOutcome | None = None


@dataclass
class Answer:
    """The chosen query (or why there is none) and everything that led to it."""

    question: str
    status: str  # "answered" or "cannot_answer"
    query: str | None
    explanation: str
    candidates: list[Candidate]
    result: QueryResult | None = None
    closest: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _parse_valid(text: str) -> tuple[ast.Expr | None, str | None]:
    try:
        return parse_query(text), None
    except LogQLError as exc:
        return None, str(exc)


def _adopt(candidate: Candidate, expr: ast.Expr, fixed: ast.Expr, done: list[str]) -> ast.Expr:
    """``fixed`` (and its repairs' names on ``candidate``) when a repair was made and its
    printed form parses again; else ``expr``: a repair never leaves an unparseable query."""
    if not done:
        return expr
    reparsed, _ = _parse_valid(format_query(fixed))
    if reparsed is None:
        return expr
    candidate.repairs = [*candidate.repairs, *done]
    return reparsed


Grounder = Callable[[ast.Expr, str], tuple[ast.Expr, list[str]]]


def validate_candidate(
    raw: str,
    question: str,
    labels: Mapping[str, Sequence[str]] | None = None,
    ground: Grounder | None = None,
) -> Candidate:
    """Extract, parse, validate and (lightly) repair one reply; ``ground`` (see
    :mod:`logpipe.nl.ground`) replaces line filters that match nothing in the store."""
    text = extract_query(raw)
    candidate = Candidate(raw, text)
    if not text:
        candidate.error = "no query in the reply"
        return candidate
    expr, error = _parse_valid(text)
    if expr is None:
        first_error = error
        tried = text
        for name, repair in TEXT_REPAIRS:  # each alone, on the original text
            fixed = repair(text, question)
            if fixed is None:
                continue
            expr, _ = _parse_valid(fixed)
            if expr is not None:
                candidate.text, candidate.repairs = fixed, [name]
                break
        if expr is None:  # all of them, in order
            names: list[str] = []
            for name, repair in TEXT_REPAIRS:
                fixed = repair(tried, question)
                if fixed is not None:
                    tried, names = fixed, [*names, name]
            expr, _ = _parse_valid(tried)
            if expr is not None:
                candidate.text, candidate.repairs = tried, names
        if expr is None:
            candidate.error = first_error
            return candidate
    if labels:
        expr = _adopt(candidate, expr, *repair_labels(expr, labels, question))
        expr = _adopt(candidate, expr, *count_of_unset_groups(expr, labels, question))
    expr = _adopt(candidate, expr, *window_from_question(expr, question))
    if ground is not None and any(isinstance(node, ast.LogExpr) for node in walk(expr)):
        expr = _adopt(candidate, expr, *ground(expr, question))
    if not any(isinstance(node, ast.LogExpr) for node in walk(expr)):
        # valid LogQL (``3``, ``vector(1)``) that reads no logs would be an invented answer
        candidate.error = "the query reads no logs (no stream selector)"
        return candidate
    expr = canonical(expr)
    candidate.expr, candidate.query = expr, format_query(expr)
    return candidate


def _merge(candidates: list[Candidate]) -> list[Candidate]:
    """Valid candidates, one per normalised query, with their votes, best first."""
    merged: dict[str, Candidate] = {}
    for c in candidates:
        if c.query is None:
            continue
        if c.query in merged:
            merged[c.query].votes += 1
        else:
            c.votes = 1
            merged[c.query] = c
    return sorted(merged.values(), key=lambda c: -c.votes)  # stable: earliest first on ties


def _retry_dropping_unwrap_errors(candidate: Candidate, execute: Executor) -> None:
    """Run ``candidate`` again with ``| __error__=""`` after its unwraps; keep the change
    (named) only if that runs (see :func:`~logpipe.nl.repair.drop_unwrap_errors`)."""
    fixed = drop_unwrap_errors(candidate.expr) if candidate.expr is not None else None
    expr, _ = _parse_valid(format_query(fixed)) if fixed is not None else (None, None)
    if expr is None:
        return
    expr = canonical(expr)
    outcome = execute(format_query(expr))
    if outcome.error is None:
        candidate.expr, candidate.query, candidate.outcome = expr, format_query(expr), outcome
        candidate.repairs = [*candidate.repairs, "drop lines the unwrap cannot convert"]


def answer(
    question: str,
    prompt: Prompt,
    generator: Generator,
    *,
    n: int = 4,
    labels: Mapping[str, Sequence[str]] | None = None,
    execute: Executor | None = None,
    max_executions: int = 3,
    fallback: Callable[[str], str | None] | None = None,
    ground: Grounder | None = None,
) -> Answer:
    """The best valid query for ``question`` among ``n`` candidates of ``generator``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    replies = generator.generate(prompt, n)
    timings["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    candidates = [validate_candidate(r, question, labels, ground) for r in replies]
    valid = _merge(candidates)
    timings["validate_s"] = time.perf_counter() - started
    if not valid:
        closest = None
        if fallback is not None:
            suggestion = fallback(question)
            if suggestion is not None:
                expr, _ = _parse_valid(suggestion)
                closest = format_query(canonical(expr)) if expr is not None else None
        return Answer(question, "cannot_answer", None,
                      "no candidate was a valid LogQL query", candidates,
                      closest=closest, timings=timings)  # fmt: skip
    chosen = valid[0]
    if execute is not None:
        started = time.perf_counter()
        for c in valid[:max_executions]:
            c.outcome = execute(c.query or "")
            if c.outcome.error and "SampleExtractionErr" in c.outcome.error:
                _retry_dropping_unwrap_errors(c, execute)
        with_data = [c for c in valid[:max_executions] if c.outcome and c.outcome.has_data]
        runnable = [c for c in valid[:max_executions] if c.outcome and c.outcome.error is None]
        chosen = (with_data or runnable or valid)[0]
        timings["execute_s"] = time.perf_counter() - started
    assert chosen.expr is not None and chosen.query is not None
    result = chosen.outcome.result if chosen.outcome else None
    return Answer(question, "answered", chosen.query, explain(chosen.expr), candidates, result,
                  timings=timings)  # fmt: skip


def has_data(result: QueryResult) -> bool:
    """Whether a result holds anything (a scalar always does)."""
    if isinstance(result, Streams):
        return any(s.entries for s in result.streams)
    if isinstance(result, Matrix):
        return bool(result.series)
    if isinstance(result, Vector):
        return bool(result.samples)
    return isinstance(result, Scalar)


def engine_executor(
    engine: QueryRunner, *, start_ns: int, end_ns: int, tenant: str = "fake", limit: int = 100
) -> Executor:
    """Runs a metric query as an instant query at ``end_ns`` and a log query over
    ``[start_ns, end_ns)``; errors (limits, bad data) become outcomes, not exceptions."""

    def run(query: str) -> ExecOutcome:
        try:
            expr = parse_query(query)  # validated again: nothing unvalidated runs
            if isinstance(expr, ast.LogExpr):
                result = engine.query_range(query, start_ns=start_ns, end_ns=end_ns,
                                            tenant=tenant, limit=limit)  # fmt: skip
            else:
                result = engine.query_instant(query, time_ns=end_ns, tenant=tenant)
        except LogQLError as exc:
            return ExecOutcome(None, False, str(exc))
        return ExecOutcome(result, has_data(result))

    return run
