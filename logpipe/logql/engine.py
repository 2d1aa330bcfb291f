"""Evaluating LogQL over the log store, with Loki's semantics.

Log queries return streams: lines with ``start <= ts < end`` that pass the pipeline,
grouped by their labels *after* the pipeline (a parser can split one stream into many),
newest first unless ``direction=forward``, at most ``limit`` entries in all.

Metric queries are evaluated at every step ``t = start, start + step, ... <= end``. A range
aggregation looks at the samples in the left-open window ``(t - offset - range, t -
offset]``; a series has a point at ``t`` only where its window holds a sample (except
``absent_over_time``). Series are numpy arrays over the steps with a presence mask, so
vector aggregations and binary operators are elementwise array work.

Binary operators follow Prometheus (which Loki's docs defer to): one-to-one matching on all
labels by default, ``on``/``ignoring``, ``group_left``/``group_right`` with included labels,
comparisons that filter unless ``bool``, and the set operators ``and``/``or``/``unless``.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from logpipe.errors import LogQLError, QueryLimitError
from logpipe.labels import MatchOp, format_labels, parse_labels
from logpipe.logql import ast
from logpipe.logql.parser import parse
from logpipe.logql.pipeline import (
    ERROR,
    ERROR_DETAILS,
    Rows,
    filter_rows,
    kernel_mask,
    run_pipeline,
)
from logpipe.logql.results import (
    Matrix,
    QueryResult,
    Sample,
    Scalar,
    Series,
    Stream,
    Streams,
    Vector,
)
from logpipe.logql.units import format_duration, parse_bytes, parse_duration
from logpipe.logql.validate import validate
from logpipe.store import DEFAULT_TENANT, Store
from logpipe.store.query import Direction

__all__ = ["Engine", "QueryLimits"]

_HOUR_NS = 3_600_000_000_000
_SEC = 1_000_000_000
_INNER_SERIES_FACTOR = 100  # series allowed inside a query, per series it may return


@dataclass(frozen=True)
class QueryLimits:
    """Loki's per-query limits, with Loki's defaults."""

    max_entries: int = 5000  # max_entries_limit_per_query
    max_series: int = 500  # max_query_series
    max_range_ns: int = 721 * _HOUR_NS  # max_query_length
    max_points: int = 11_000  # points per series (Loki's resolution limit)
    timeout_s: float = 60.0


@dataclass
class _SeriesSet:
    """Series over the query's steps: labels -> (values, present)."""

    steps: np.ndarray  # int64 ns
    series: dict[str, tuple[dict[str, str], np.ndarray, np.ndarray]]

    def add(self, labels: dict[str, str], values: np.ndarray, present: np.ndarray) -> None:
        if present.any():
            self.series[format_labels(labels)] = (labels, values, present)


@dataclass
class _ScalarSteps:
    steps: np.ndarray
    values: np.ndarray


_Value = _SeriesSet | _ScalarSteps


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.end = time.monotonic() + timeout_s
        self.timeout_s = timeout_s

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise QueryLimitError(f"query timed out after {self.timeout_s:g}s")


class Engine:
    """LogQL queries over a :class:`~logpipe.store.Store`, with Loki's semantics."""

    def __init__(self, store: Store, *, limits: QueryLimits | None = None) -> None:
        self.store = store
        self.limits = limits or QueryLimits()

    # ------------------------------------------------------------------ entry points
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
        """A range query: streams for a log query, a matrix for a metric query."""
        expr = self._parse(query)
        self._check_common(start_ns, end_ns, direction, limit,
                           log_query=isinstance(expr, ast.LogExpr))  # fmt: skip
        if isinstance(expr, ast.LogExpr):
            return self._log_query(expr, tenant, start=start_ns, end=end_ns, direction=direction,
                                   limit=limit)  # fmt: skip
        if step_ns is None:
            step_ns = max(math.floor((end_ns - start_ns) / _SEC / 250), 1) * _SEC
        if step_ns <= 0:
            raise QueryLimitError(
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        points = (end_ns - start_ns) // step_ns + 1
        if points > self.limits.max_points:
            raise QueryLimitError(
                f"exceeded maximum resolution of {self.limits.max_points:,} points per "
                "timeseries. Try increasing the value of the step parameter"
            )
        steps = np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
        value = self._limit(self._eval(expr, tenant, steps, _Deadline(self.limits.timeout_s)),
                            final=True)  # fmt: skip
        if isinstance(value, _ScalarSteps):
            return Matrix([Series({}, [(int(t), float(v)) for t, v in
                                       zip(value.steps, value.values, strict=True)])])  # fmt: skip
        return Matrix(self._matrix(value))

    def query_instant(
        self,
        query: str,
        *,
        time_ns: int,
        tenant: str = DEFAULT_TENANT,
        direction: str = "backward",
        limit: int = 100,
    ) -> QueryResult:
        """An instant query of a metric expression: a vector (a scalar for a literal).

        Log queries are refused, as Loki 3 refuses them: they need a range.
        """
        expr = self._parse(query)
        if isinstance(expr, ast.LogExpr):
            raise LogQLError(
                "log queries are not supported as an instant query type, please change your "
                "query to a range query type"
            )
        self._check_common(time_ns, time_ns, direction, limit)
        steps = np.array([time_ns], dtype=np.int64)
        value = self._limit(self._eval(expr, tenant, steps, _Deadline(self.limits.timeout_s)),
                            final=True)  # fmt: skip
        if isinstance(value, _ScalarSteps):
            return Scalar(time_ns, float(value.values[0]))
        samples = [Sample(labels, time_ns, float(values[0]))
                   for labels, values, present in value.series.values() if present[0]]  # fmt: skip
        order = _sort_order(expr)
        if order is None:
            samples.sort(key=lambda s: format_labels(s.labels))
        else:
            samples.sort(key=lambda s: s.value, reverse=order == "desc")
        return Vector(samples)

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _parse(query: str) -> ast.Expr:
        expr = parse(query)
        validate(expr, query)
        return expr

    def _check_common(
        self, start: int, end: int, direction: str, limit: int, *, log_query: bool = False
    ) -> None:
        if direction not in ("forward", "backward"):
            raise LogQLError(f"invalid direction {direction!r}: use forward or backward")
        if end < start:
            raise LogQLError("end timestamp must not be before start time")
        if limit < 0:
            raise LogQLError("limit must be a positive value")
        if log_query and limit > self.limits.max_entries:
            raise QueryLimitError(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                f"({limit} > {self.limits.max_entries})"
            )
        if end - start > self.limits.max_range_ns:
            raise QueryLimitError(
                "the query time range exceeds the limit (query length: "
                f"{format_duration(end - start)}, "
                f"limit: {format_duration(self.limits.max_range_ns)})"
            )

    # ------------------------------------------------------------------ reading
    def _rows(
        self, log: ast.LogExpr, tenant: str, start: int, end: int, direction: str,
    ) -> Iterator[Rows]:  # fmt: skip
        """Per-stream chunks of rows, in read order, after the pipeline.

        The leading line filters run as Arrow kernels on the stored bytes before any line
        becomes a Python string; a ``|=`` needle also goes to the store, which skips the
        segments that cannot hold it.
        """
        kernel_filters = list(_kernel_filters(log.stages))
        stages = log.stages[len(kernel_filters) :]
        contains = [f.values[0] for f in kernel_filters
                    if f.op == "|=" and len(f.values) == 1 and f.values[0]]  # fmt: skip
        labels_of: dict[str, dict[str, str]] = {}
        order: Direction = "forward" if direction == "forward" else "backward"
        for read in self.store.read(tenant, log.matchers, start, end, direction=order,
                                    contains=[str(c) for c in contains]):  # fmt: skip
            batch = read
            if kernel_filters:
                batch = read.filter(kernel_mask(read.column("line"), kernel_filters))
            if not batch.num_rows:
                continue
            ts = batch.column("ts").cast("int64").to_numpy(zero_copy_only=False)
            streams = batch.column("stream")
            names = streams.dictionary.to_pylist()
            index = streams.indices.to_numpy(zero_copy_only=False)
            lines = [
                x.decode("utf-8", "replace") if isinstance(x, bytes) else x
                for x in batch.column("line").to_pylist()
            ]
            # split the batch into runs of one stream, keeping read order
            cuts = np.flatnonzero(np.diff(index)) + 1
            bounds = [0, *cuts.tolist(), len(index)]
            for lo, hi in itertools.pairwise(bounds):
                key = names[int(index[lo])]
                stream = labels_of.get(key)
                if stream is None:
                    stream = labels_of[key] = parse_labels(key)
                rows = Rows.of(stream, ts[lo:hi].tolist(), lines[lo:hi])
                yield run_pipeline(rows, stages)

    def _log_query(
        self, log: ast.LogExpr, tenant: str, *, start: int, end: int, direction: str, limit: int,
    ) -> Streams:  # fmt: skip
        grouped: dict[str, Stream] = {}
        taken = 0
        for rows in self._rows(log, tenant, start, end, direction):
            for ts, line, row_labels in zip(rows.ts, rows.lines, rows.labels, strict=True):
                if taken >= limit:
                    break
                labels = _present(row_labels)
                key = format_labels(labels)
                stream = grouped.get(key)
                if stream is None:
                    stream = grouped[key] = Stream(labels, [])
                stream.entries.append((ts, line))
                taken += 1
            if taken >= limit:
                break
        return Streams([grouped[k] for k in sorted(grouped)])

    # ------------------------------------------------------------------ metric evaluation
    def _eval(self, expr: ast.MetricExpr, tenant: str, steps: np.ndarray, deadline: _Deadline
              ) -> _Value:  # fmt: skip
        deadline.check()
        if isinstance(expr, ast.NumberLiteral):
            return _ScalarSteps(steps, np.full(len(steps), expr.value))
        if isinstance(expr, ast.VectorLiteral):
            out = _SeriesSet(steps, {})
            out.add({}, np.full(len(steps), expr.value), np.ones(len(steps), bool))
            return out
        if isinstance(expr, ast.RangeAggregation):
            return self._limit(self._range_agg(expr, tenant, steps, deadline))
        if isinstance(expr, ast.VectorAggregation):
            inner = self._eval(expr.expr, tenant, steps, deadline)
            return self._limit(_vector_agg(expr, _as_series(inner)))
        if isinstance(expr, ast.LabelReplace):
            inner = _as_series(self._eval(expr.expr, tenant, steps, deadline))
            return self._limit(_label_replace(expr, inner))
        lhs = self._eval(expr.lhs, tenant, steps, deadline)
        rhs = self._eval(expr.rhs, tenant, steps, deadline)
        return self._limit(_binop(expr, lhs, rhs))

    def _limit(self, value: _Value, *, final: bool = False) -> _Value:
        """Loki limits the series a query returns; inner results get a generous cap (memory).

        ``sum(count_over_time({app="x"}[1m]))`` over 10,000 streams returns one series.
        """
        cap = self.limits.max_series * (1 if final else _INNER_SERIES_FACTOR)
        if isinstance(value, _SeriesSet) and len(value.series) > cap:
            raise QueryLimitError(_too_many_series(self.limits.max_series))
        return value

    def _range_agg(self, expr: ast.RangeAggregation, tenant: str, steps: np.ndarray,
                   deadline: _Deadline) -> _SeriesSet:  # fmt: skip
        rng = expr.range
        lo = int(steps[0]) - rng.offset_nanos - rng.range_nanos
        hi = int(steps[-1]) - rng.offset_nanos + 1  # windows are right-closed
        samples: dict[str, tuple[dict[str, str], list[int], list[float]]] = {}
        for rows in self._rows(rng.log, tenant, lo, hi, "forward"):
            deadline.check()
            if rng.unwrap is None and rows.uniform:  # labels untouched: one series, in bulk
                key = format_labels(rows.stream)
                entry = samples.get(key)
                if entry is None:
                    entry = samples[key] = (dict(rows.stream), [], [])
                entry[1].extend(rows.ts)
                if expr.op.startswith("bytes"):
                    entry[2].extend(float(len(x.encode("utf-8"))) for x in rows.lines)
                else:
                    entry[2].extend([1.0] * len(rows))
                continue
            for row_labels, ts, value in _extract(expr, rng, rows):
                labels = _present(row_labels)
                if expr.grouping is not None:
                    labels = _group_labels(labels, expr.grouping)
                key = format_labels(labels)
                entry = samples.get(key)
                if entry is None:
                    entry = samples[key] = (labels, [], [])
                    if len(samples) > self.limits.max_series * _INNER_SERIES_FACTOR:
                        raise QueryLimitError(_too_many_series(self.limits.max_series))
                entry[1].append(ts)
                entry[2].append(value)
        out = _SeriesSet(steps, {})
        ends = steps - rng.offset_nanos
        starts = ends - rng.range_nanos
        if expr.op == "absent_over_time":
            seen = np.zeros(len(steps), bool)
            for _, ts_list, _ in samples.values():
                ts_arr = np.array(ts_list, dtype=np.int64)
                order = np.sort(ts_arr)
                count = np.searchsorted(order, ends, "right") - np.searchsorted(
                    order, starts, "right"
                )
                seen |= count > 0
            labels = {m.name: m.value for m in rng.log.matchers if m.op is MatchOp.EQ}
            out.add(labels, np.ones(len(steps)), ~seen)
            return out
        for labels, ts_list, values in samples.values():
            order = np.argsort(np.array(ts_list, dtype=np.int64), kind="stable")
            ts_arr = np.array(ts_list, dtype=np.int64)[order]
            val = np.array(values, dtype=np.float64)[order]
            a = np.searchsorted(ts_arr, starts, "right")
            b = np.searchsorted(ts_arr, ends, "right")
            result, present = _window(expr, ts_arr, val, a=a, b=b, starts=starts, ends=ends,
                                      range_ns=rng.range_nanos)  # fmt: skip
            out.add(labels, result, present)
        return out

    # ------------------------------------------------------------------ output
    @staticmethod
    def _matrix(value: _SeriesSet) -> list[Series]:
        out = []
        for key in sorted(value.series):
            labels, values, present = value.series[key]
            points = [(int(t), float(v)) for t, v, p in
                      zip(value.steps, values, present, strict=True) if p]  # fmt: skip
            out.append(Series(labels, points))
        return out


def _present(labels: dict[str, str]) -> dict[str, str]:
    """A label with an empty value is no label (Prometheus's and Loki's label model)."""
    if all(labels.values()):
        return labels
    return {k: v for k, v in labels.items() if v}


def _kernel_filters(stages: Sequence[ast.Stage]) -> Iterator[ast.LineFilter]:
    """The pipeline's leading substring and regex line filters (they run as kernels)."""
    for stage in stages:
        if not (
            isinstance(stage, ast.LineFilter)
            and stage.op in ("|=", "!=", "|~", "!~")
            and all(isinstance(v, str) for v in stage.values)
        ):
            return
        yield stage


_ERROR_HINT = (
    "pipeline error: '{error}' for series: '{series}'. Use a label filter to intentionally "
    'skip this error. (e.g | __error__!="{error}"). To skip all potential errors you can '
    'match empty errors.(e.g __error__="") The label filter can also be specified after '
    'unwrap. (e.g | unwrap latency | __error__="" )'
)


def _too_many_series(limit: int) -> str:
    return (
        f"maximum number of series ({limit}) reached for a single query; consider reducing "
        "query cardinality by adding more specific stream selectors, reducing the time range, "
        "or aggregating results with functions like sum(), count() or topk()"
    )


def _mentions_error(rng: ast.LogRange) -> bool:
    """Whether a label filter names ``__error__``: then errors are wanted in the series.

    Loki refuses series with ``__error__`` in metric queries "unless they've been
    specifically requested", which is what such a filter does.
    """
    filters = [s.filter for s in rng.log.stages if isinstance(s, ast.LabelFilterStage)]
    if rng.unwrap is not None:
        filters.extend(rng.unwrap.post_filters)
    stack = list(filters)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.AndFilter | ast.OrFilter):
            stack.extend((node.left, node.right))
        elif isinstance(node, ast.StringFilter) and node.matcher.name == ERROR:
            return True
    return False


def _extract(expr: ast.RangeAggregation, rng: ast.LogRange, rows: Rows
             ) -> Iterator[tuple[dict[str, str], int, float]]:  # fmt: skip
    """(series labels, ts, sample value) for each row of a range aggregation."""
    unwrap = rng.unwrap
    preserve = _mentions_error(rng)
    if unwrap is None:
        for ts, line, labels in zip(rows.ts, rows.lines, rows.labels, strict=True):
            if ERROR in labels and not preserve:
                raise LogQLError(_ERROR_HINT.format(error=labels[ERROR],
                                                    series=format_labels(labels)))  # fmt: skip
            value = float(len(line.encode("utf-8"))) if expr.op.startswith("bytes") else 1.0
            yield labels, ts, value
        return
    converted: list[float] = []
    for labels in rows.labels:
        raw = labels.pop(unwrap.label, "")
        try:
            converted.append(_convert_sample(unwrap.conversion, raw))
        except ValueError as exc:
            converted.append(math.nan)
            labels.setdefault(ERROR, "SampleExtractionErr")
            labels.setdefault(ERROR_DETAILS, str(exc))
    kept = filter_rows(rows, unwrap.post_filters) if unwrap.post_filters else range(len(rows))
    for i in kept:
        labels = rows.labels[i]
        if ERROR in labels and not preserve:
            raise LogQLError(_ERROR_HINT.format(error=labels[ERROR], series=format_labels(labels)))
        labels.pop(ERROR_DETAILS, None)
        yield labels, rows.ts[i], converted[i]


def _convert_sample(conversion: str, raw: str) -> float:
    text = raw.strip()
    if conversion == "bytes":
        return float(parse_bytes(text.replace(" ", "")))
    if conversion in ("duration", "duration_seconds"):
        sign = -1 if text.startswith("-") else 1
        return sign * parse_duration(text.lstrip("+-")) / _SEC
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"strconv.ParseFloat: parsing {raw!r}: invalid syntax") from None


def _group_labels(labels: dict[str, str], grouping: ast.Grouping) -> dict[str, str]:
    if grouping.without:
        return {k: v for k, v in labels.items() if k not in grouping.labels}
    return {k: labels[k] for k in grouping.labels if k in labels}


def _window(
    expr: ast.RangeAggregation, ts: np.ndarray, val: np.ndarray, *, a: np.ndarray,
    b: np.ndarray, starts: np.ndarray, ends: np.ndarray, range_ns: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each step's value of a range function over samples ``[a, b)`` (sorted by ts)."""
    count = (b - a).astype(np.float64)
    present = b > a
    csum = np.concatenate(([0.0], np.cumsum(val)))
    total = csum[b] - csum[a]
    seconds = range_ns / _SEC
    op = expr.op
    if op in ("count_over_time",):
        return count, present
    if op in ("bytes_over_time", "sum_over_time"):
        return total, present
    if op in ("rate", "bytes_rate"):
        return total / seconds, present
    if op == "avg_over_time":
        return np.divide(total, count, out=np.zeros_like(total), where=present), present
    out = np.zeros(len(a))
    for i, (lo, hi) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        if hi <= lo:
            continue
        window = val[lo:hi]
        if op == "min_over_time":
            out[i] = window.min()
        elif op == "max_over_time":
            out[i] = window.max()
        elif op == "first_over_time":
            out[i] = window[0]
        elif op == "last_over_time":
            out[i] = window[-1]
        elif op in ("stddev_over_time", "stdvar_over_time"):
            var = float(np.mean((window - window.mean()) ** 2))
            out[i] = math.sqrt(var) if op == "stddev_over_time" else var
        elif op == "quantile_over_time":
            out[i] = _quantile(float(expr.param or 0.0), window)
        elif op == "rate_counter":
            out[i] = _counter_rate(ts[lo:hi], window, int(starts[i]), int(ends[i]))
    return out, present


def _quantile(phi: float, values: np.ndarray) -> float:
    """Prometheus's quantile: linear interpolation between closest ranks."""
    if math.isnan(phi):
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    ordered = np.sort(values)
    rank = phi * (len(ordered) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(ordered) - 1)
    weight = rank - lower
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def _counter_rate(ts: np.ndarray, values: np.ndarray, start: int, end: int) -> float:
    """Prometheus's extrapolated rate of a counter (resets add the value before them)."""
    if len(values) < 2:
        return 0.0
    increase = float(values[-1] - values[0])
    drops = np.diff(values) < 0
    increase += float(values[:-1][drops].sum())
    sampled = (int(ts[-1]) - int(ts[0])) / _SEC
    to_start = (int(ts[0]) - start) / _SEC
    to_end = (end - int(ts[-1])) / _SEC
    average = sampled / (len(values) - 1)
    if increase > 0 and values[0] >= 0:
        zero_at = sampled * (values[0] / increase)
        to_start = min(to_start, zero_at)
    threshold = average * 1.1
    extrapolate = sampled
    extrapolate += to_start if to_start < threshold else average / 2
    extrapolate += to_end if to_end < threshold else average / 2
    return increase * (extrapolate / sampled) / ((end - start) / _SEC) if sampled else 0.0


# ------------------------------------------------------------------ vector operations
def _as_series(value: _Value) -> _SeriesSet:
    if isinstance(value, _SeriesSet):
        return value
    out = _SeriesSet(value.steps, {})
    out.add({}, value.values.copy(), np.ones(len(value.steps), bool))
    return out


def _vector_agg(expr: ast.VectorAggregation, inner: _SeriesSet) -> _SeriesSet:
    n = len(inner.steps)
    out = _SeriesSet(inner.steps, {})
    if expr.op in ("sort", "sort_desc"):
        return inner
    groups: dict[
        str, tuple[dict[str, str], list[tuple[dict[str, str], np.ndarray, np.ndarray]]]
    ] = {}
    for labels, values, present in inner.series.values():
        key_labels = _group_labels(labels, expr.grouping) if expr.grouping else {}
        key = format_labels(key_labels)
        groups.setdefault(key, (key_labels, []))[1].append((labels, values, present))
    for key_labels, members in groups.values():
        vals = np.array([m[1] for m in members])
        pres = np.array([m[2] for m in members])
        if expr.op in ("topk", "bottomk"):
            k = int(expr.param or 0)
            masked = np.where(pres, vals, -np.inf if expr.op == "topk" else np.inf)
            order = np.argsort(-masked if expr.op == "topk" else masked, axis=0, kind="stable")
            chosen = np.zeros_like(pres)
            for step in range(n):
                picked = [i for i in order[:, step] if pres[i, step]][:k]
                chosen[picked, step] = True
            for (labels, values, _), keep in zip(members, chosen, strict=True):
                out.add(labels, values, keep)
            continue
        count = pres.sum(axis=0)
        any_present = count > 0
        filled = np.where(pres, vals, 0.0)
        if expr.op == "sum":
            result = filled.sum(axis=0)
        elif expr.op == "count":
            result = count.astype(np.float64)
        elif expr.op == "avg":
            result = np.divide(filled.sum(axis=0), count, out=np.zeros(n), where=any_present)
        elif expr.op == "min":
            result = np.where(pres, vals, np.inf).min(axis=0)
        elif expr.op == "max":
            result = np.where(pres, vals, -np.inf).max(axis=0)
        else:  # stddev, stdvar (population)
            mean = np.divide(filled.sum(axis=0), count, out=np.zeros(n), where=any_present)
            sq = np.where(pres, (vals - mean) ** 2, 0.0).sum(axis=0)
            var = np.divide(sq, count, out=np.zeros(n), where=any_present)
            result = np.sqrt(var) if expr.op == "stddev" else var
        out.add(key_labels, result, any_present)
    return out


def _sort_order(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.VectorAggregation) and expr.op in ("sort", "sort_desc"):
        return "desc" if expr.op == "sort_desc" else "asc"
    return None


_DOLLAR = re.compile(r"\$(\{(\w+)\}|(\w+))")


def _label_replace(expr: ast.LabelReplace, inner: _SeriesSet) -> _SeriesSet:
    rx = re.compile(f"(?:{expr.regex})\\Z", re.DOTALL)
    out = _SeriesSet(inner.steps, {})
    for labels, values, present in inner.series.values():
        m = rx.match(labels.get(expr.src, ""))
        new = dict(labels)
        if m:

            def group(g: re.Match[str], found: re.Match[str] = m) -> str:
                name = g.group(2) or g.group(3)
                try:
                    return found.group(int(name) if name.isdigit() else name) or ""
                except IndexError:
                    return ""

            value = _DOLLAR.sub(group, expr.replacement)
            if value:
                new[expr.dst] = value
            else:
                new.pop(expr.dst, None)
        out.add(new, values, present)
    return out


_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
}  # fmt: skip
_CMP: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "==": np.equal, "!=": np.not_equal, ">": np.greater, ">=": np.greater_equal,
    "<": np.less, "<=": np.less_equal,
}  # fmt: skip


def _apply(op: str, a: np.ndarray, b: np.ndarray, return_bool: bool
           ) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Values, and (for a filtering comparison) which elements survive."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op in _ARITH:
            return _ARITH[op](a, b), None
        hit = _CMP[op](a, b)
    if return_bool:
        return hit.astype(np.float64), None
    return a, hit


def _signature(labels: dict[str, str], matching: ast.VectorMatching | None) -> str:
    if matching is None:
        return format_labels(labels)
    if matching.on:
        return format_labels({k: v for k, v in labels.items() if k in matching.labels})
    return format_labels({k: v for k, v in labels.items() if k not in matching.labels})


def _result_labels(lhs: dict[str, str], rhs: dict[str, str], matching: ast.VectorMatching | None
                   ) -> dict[str, str]:  # fmt: skip
    if matching is None:
        return dict(lhs)
    if matching.card == "one":
        if matching.on:
            return {k: v for k, v in lhs.items() if k in matching.labels}
        return {k: v for k, v in lhs.items() if k not in matching.labels}
    out = dict(lhs)
    for name in matching.include:
        if name in rhs:
            out[name] = rhs[name]
        else:
            out.pop(name, None)
    return out


def _binop(expr: ast.BinaryOp, lhs: _Value, rhs: _Value) -> _Value:
    op = expr.op
    if isinstance(lhs, _ScalarSteps) and isinstance(rhs, _ScalarSteps):
        values, _ = _apply(op, lhs.values, rhs.values, True)
        return _ScalarSteps(lhs.steps, values)
    if isinstance(lhs, _ScalarSteps) or isinstance(rhs, _ScalarSteps):
        scalar_left = isinstance(lhs, _ScalarSteps)
        vec = rhs if scalar_left else lhs
        sc = lhs if scalar_left else rhs
        assert isinstance(vec, _SeriesSet) and isinstance(sc, _ScalarSteps)
        out = _SeriesSet(vec.steps, {})
        for labels, values, present in vec.series.values():
            a, b = (sc.values, values) if scalar_left else (values, sc.values)
            result, keep = _apply(op, a, b, expr.return_bool)
            if keep is not None:
                result = values  # a filtering comparison keeps the vector's value
            out.add(labels, result, present & (keep if keep is not None else True))
        return out
    assert isinstance(lhs, _SeriesSet) and isinstance(rhs, _SeriesSet)
    if op in ("and", "or", "unless"):
        return _set_op(expr, lhs, rhs)
    matching = expr.matching
    card = matching.card if matching else "one"
    one_side, many_side = (rhs, lhs) if card != "right" else (lhs, rhs)
    index: dict[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]] = {}
    for entry in one_side.series.values():
        index.setdefault(_signature(entry[0], matching), []).append(entry)
    out = _SeriesSet(lhs.steps, {})
    for m_labels, m_values, m_present in many_side.series.values():
        candidates = index.get(_signature(m_labels, matching), [])
        if not candidates:
            continue
        o_labels, o_values, o_present = candidates[0]
        if len(candidates) > 1:
            both = np.array([c[2] for c in candidates]).sum(axis=0)
            if (both > 1).any():
                raise LogQLError("multiple matches for labels: many-to-one matching must be "
                                 "explicit (group_left/group_right)")  # fmt: skip
            o_values = np.select([c[2] for c in candidates], [c[1] for c in candidates])
            o_present = np.asarray(np.array([c[2] for c in candidates]).any(axis=0))
        # the "many" side keeps its labels; operands stay in the query's order
        labels = _result_labels(m_labels, o_labels, matching)
        left, right = (o_values, m_values) if card == "right" else (m_values, o_values)
        result, keep = _apply(op, left, right, expr.return_bool)
        present = m_present & o_present
        if keep is not None:
            present &= keep
        key = format_labels(labels)
        if key in out.series and card == "one":
            raise LogQLError("multiple matches for labels: one-to-one matching found duplicate "
                             f"series {key} on the result side")  # fmt: skip
        out.add(labels, result, present)
    return out


def _set_op(expr: ast.BinaryOp, lhs: _SeriesSet, rhs: _SeriesSet) -> _SeriesSet:
    rhs_present: dict[str, np.ndarray] = {}
    for labels, _, present in rhs.series.values():
        sig = _signature(labels, expr.matching)
        rhs_present[sig] = rhs_present.get(sig, np.zeros_like(present)) | present
    out = _SeriesSet(lhs.steps, {})
    none = np.zeros(len(lhs.steps), bool)
    if expr.op in ("and", "unless"):
        for labels, values, present in lhs.series.values():
            other = rhs_present.get(_signature(labels, expr.matching), none)
            out.add(labels, values, present & (other if expr.op == "and" else ~other))
        return out
    lhs_present: dict[str, np.ndarray] = {}
    for labels, values, present in lhs.series.values():
        out.add(labels, values, present)
        sig = _signature(labels, expr.matching)
        lhs_present[sig] = lhs_present.get(sig, np.zeros_like(present)) | present
    for labels, values, present in rhs.series.values():
        taken = lhs_present.get(_signature(labels, expr.matching), none)
        key = format_labels(labels)
        if key in out.series:
            old_labels, old_values, old_present = out.series[key]
            extra = present & ~taken & ~old_present
            out.series[key] = (old_labels, np.where(extra, values, old_values), old_present | extra)
        else:
            out.add(labels, values, present & ~taken)
    return out
