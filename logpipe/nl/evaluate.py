"""Scoring predicted queries against gold ones: exact match, execution match, validity.

* **Exact match**: the predicted query parses, validates, and its normalised tree equals the
  gold one's (:func:`~logpipe.nl.normalise.same_query`).
* **Execution match**: both queries run as range queries over the same window and step of
  the same store, and give the same result. Results are compared as values, not spellings:
  a log query's entries as a multiset of (time, line); a metric query's series as a multiset
  of (label values, points), label *names* ignored (``sum by (ip)`` and ``sum by
  (source_ip)`` over the same regexp group give the same answer), values to 9 significant
  digits. A gold query that fails to run is reported apart and left out of the rate.
* **Validity**: the predicted query parses and validates.

Empty results are common on a 2k-line sample (a question about lines the sample lacks), and
two empty results match; so the rate over questions whose gold result is not empty is
reported beside the overall one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from logpipe.errors import LogQLError
from logpipe.logql import parse_query
from logpipe.logql.engine import Engine
from logpipe.logql.results import Matrix, QueryResult, Scalar, Streams, Vector
from logpipe.nl.data import Pair
from logpipe.nl.normalise import same_query

__all__ = ["Outcome", "Scores", "Window", "canonical_result", "score", "score_one"]


@dataclass(frozen=True)
class Window:
    """Where and how queries run: ``[start_ns, end_ns]`` every ``step_ns``."""

    start_ns: int
    end_ns: int
    step_ns: int
    tenant: str = "fake"
    limit: int = 5000


def _num(value: float) -> str:
    return f"{value:.9g}"


def canonical_result(result: QueryResult) -> Counter[Any]:
    """A result as a multiset of comparable rows (see the module docstring)."""
    if isinstance(result, Streams):
        return Counter((ts, line) for s in result.streams for ts, line in s.entries)
    if isinstance(result, Matrix):
        return Counter(
            (tuple(sorted(s.labels.values())), tuple((ts, _num(v)) for ts, v in s.points))
            for s in result.series
        )
    if isinstance(result, Vector):
        return Counter((tuple(sorted(s.labels.values())), s.ts_ns, _num(s.value))
                       for s in result.samples)  # fmt: skip
    assert isinstance(result, Scalar)
    return Counter([(result.ts_ns, _num(result.value))])


def run(engine: Engine, query: str, window: Window) -> tuple[Counter[Any] | None, str | None]:
    """The canonical result of ``query`` over ``window``, or the error it raised."""
    try:
        result = engine.query_range(query, start_ns=window.start_ns, end_ns=window.end_ns,
                                    step_ns=window.step_ns, tenant=window.tenant,
                                    limit=window.limit)  # fmt: skip
    except LogQLError as exc:
        return None, str(exc)
    return canonical_result(result), None


@dataclass
class Outcome:
    """One question's scores."""

    question: str
    gold: str
    predicted: str | None
    valid: bool
    exact: bool
    executed: bool | None  # None: the gold query itself failed to run
    gold_has_data: bool
    latency_s: float
    error: str | None = None


@dataclass
class Scores:
    """Rates over a set of outcomes."""

    outcomes: list[Outcome] = field(default_factory=list)

    def _rate(self, flags: Sequence[bool]) -> float:
        return sum(flags) / len(flags) if flags else float("nan")

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def exact(self) -> float:
        return self._rate([o.exact for o in self.outcomes])

    @property
    def valid(self) -> float:
        return self._rate([o.valid for o in self.outcomes])

    @property
    def execution(self) -> float:
        return self._rate([bool(o.executed) for o in self.outcomes if o.executed is not None])

    @property
    def execution_nonempty(self) -> float:
        return self._rate([bool(o.executed) for o in self.outcomes
                           if o.executed is not None and o.gold_has_data])  # fmt: skip

    @property
    def gold_errors(self) -> int:
        return sum(o.executed is None for o in self.outcomes)

    @property
    def gold_nonempty(self) -> int:
        return sum(o.gold_has_data for o in self.outcomes if o.executed is not None)

    def latency(self, q: float) -> float:
        values = sorted(o.latency_s for o in self.outcomes)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "exact": self.exact, "execution": self.execution,
                "execution_nonempty": self.execution_nonempty, "valid": self.valid,
                "latency_median_s": self.latency(0.5), "latency_p90_s": self.latency(0.9),
                "gold_errors": self.gold_errors, "gold_nonempty": self.gold_nonempty}  # fmt: skip


def score_one(
    engine: Engine, pair: Pair, predicted: str | None, latency_s: float, window: Window
) -> Outcome:
    """Score one prediction against its gold pair."""
    expr = None
    error = None
    if predicted:
        try:
            expr = parse_query(predicted)
        except LogQLError as exc:
            error = str(exc)
    gold_rows, gold_error = run(engine, pair.query, window)
    executed: bool | None
    if gold_rows is None:
        executed = None
        error = error or f"gold query failed: {gold_error}"
    elif expr is None or predicted is None:
        executed = False
    else:
        pred_rows, pred_error = run(engine, predicted, window)
        executed = pred_rows == gold_rows
        error = error or pred_error
    return Outcome(pair.question, pair.query, predicted, expr is not None,
                   expr is not None and same_query(expr, pair.expr), executed,
                   bool(gold_rows), latency_s, error)  # fmt: skip


Predictor = Callable[[str], str | None]


def score(
    engine: Engine,
    pairs: Sequence[Pair],
    predict: Predictor,
    window: Window,
    clock: Callable[[], float] | None = None,
) -> Scores:
    """Predict and score every pair; latency is the predictor's own time per question."""
    import time  # noqa: PLC0415

    now = clock or time.perf_counter
    scores = Scores()
    for pair in pairs:
        started = now()
        predicted = predict(pair.question)
        latency = now() - started
        scores.outcomes.append(score_one(engine, pair, predicted, latency, window))
    return scores
