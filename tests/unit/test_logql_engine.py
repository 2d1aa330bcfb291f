"""The engine's limits and edges (the language itself is in the golden scripts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.errors import LogQLError, QueryLimitError
from logpipe.logql.engine import Engine, QueryLimits
from logpipe.logql.gotemplate import TemplateError, compile_template
from logpipe.logql.results import Matrix, Scalar, Streams, Vector, format_value, to_loki_json
from logpipe.store import Store

S = 1_000_000_000


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    store = Store(tmp_path / "store")
    for host in ("a", "b", "c"):
        store.ingest("fake", {"app": "x", "host": host}, [i * S for i in range(1, 11)],
                     [f"n={i} host={host}".encode() for i in range(1, 11)])  # fmt: skip
    return Engine(store, limits=QueryLimits(max_series=2, max_points=300, max_entries=20,
                                            max_range_ns=3600 * S))  # fmt: skip


def test_limits_are_query_limit_errors(engine: Engine) -> None:
    with pytest.raises(QueryLimitError, match="maximum number of series"):
        engine.query_instant('count_over_time({app="x"}[10s])', time_ns=10 * S)
    with pytest.raises(QueryLimitError, match="maximum resolution of 300 points"):
        engine.query_range('sum(count_over_time({app="x"}[10s]))', start_ns=0, end_ns=1000 * S,
                           step_ns=1 * S)  # fmt: skip
    with pytest.raises(QueryLimitError, match="max entries limit per query exceeded"):
        engine.query_range('{app="x"}', start_ns=0, end_ns=10 * S, limit=21)
    with pytest.raises(QueryLimitError, match="query time range exceeds the limit"):
        engine.query_range('{app="x"}', start_ns=0, end_ns=7200 * S, limit=10)
    # grouping brings the series under the limit
    result = engine.query_instant('sum(count_over_time({app="x"}[10s]))', time_ns=10 * S)
    assert isinstance(result, Vector) and result.samples[0].value == 30


def test_bad_requests_are_logql_errors(engine: Engine) -> None:
    with pytest.raises(LogQLError, match="direction"):
        engine.query_range('{app="x"}', start_ns=0, end_ns=S, direction="sideways", limit=10)
    with pytest.raises(LogQLError, match="end timestamp must not be before start"):
        engine.query_range('{app="x"}', start_ns=S, end_ns=0, limit=10)
    with pytest.raises(LogQLError, match="not supported as an instant query"):
        engine.query_instant('{app="x"}', time_ns=S)
    with pytest.raises(QueryLimitError, match="step"):
        engine.query_range('sum(count_over_time({app="x"}[1s]))', start_ns=0, end_ns=S,
                           step_ns=0)  # fmt: skip


def test_result_types_and_default_step(engine: Engine) -> None:
    assert isinstance(engine.query_instant("1 + 1", time_ns=S), Scalar)
    logs = engine.query_range('{app="x", host="a"} |= "n=1"', start_ns=0, end_ns=11 * S, limit=10)
    assert isinstance(logs, Streams) and [ts for ts, _ in logs.streams[0].entries] == [10 * S, S]
    matrix = engine.query_range('sum(count_over_time({app="x"}[1s]))', start_ns=0, end_ns=500 * S)
    assert isinstance(matrix, Matrix)
    steps = [t for t, _ in matrix.series[0].points]
    assert steps[:3] == [2 * S, 4 * S, 6 * S]  # (500 s / 250) = 2 s steps; empty windows absent


def test_loki_json_encoding() -> None:
    values = (1.0, 0.1, 1e21, 1 / 3, float("nan"), float("-inf"), -0.0)
    expected = ["1", "0.1", "1000000000000000000000", "0.3333333333333333", "NaN", "-Inf", "-0"]
    assert [format_value(v) for v in values] == expected
    body = to_loki_json(Vector([]))
    assert body == {
        "status": "success",
        "data": {"resultType": "vector", "result": [], "stats": {}},
    }
    matrix = to_loki_json(Matrix([]))
    assert matrix["data"]["resultType"] == "matrix"


def test_templates() -> None:
    labels = {"a": "x", "n": "5"}
    assert compile_template('{{ .a }}-{{ .n | printf "%03d" }}').render(labels) == "x-005"
    assert compile_template("{{ if gt .n 3 }}big{{ else }}small{{ end }}").render(labels) == "big"
    assert compile_template('{{ .missing | default "d" }}').render(labels) == "d"
    assert compile_template("{{ __line__ | ToUpper }}").render(labels, "hi") == "HI"
    assert compile_template("{{- .a -}}  !").render(labels) == "x!"
    for bad in ("{{ nosuchfn .a }}", "{{ if .a }}x", "{{ range .a }}{{ end }}", "{{ .a | }}"):
        with pytest.raises(TemplateError):
            compile_template(bad)
