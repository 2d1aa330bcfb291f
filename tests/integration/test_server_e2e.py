"""End to end with the real engine: push over HTTP, query back over HTTP; limits; and a fuzz
test that random queries and parameters only ever get 200 or 400, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from logpipe.logql.engine import QueryLimits
from logpipe.server import create_app
from logpipe.server.runner import BackgroundServer
from logpipe.store import Store
from tests.serverutil import get_json, http, push_request

S = 1_000_000_000
NOW = 1_700_000_000 * S
LEVELS = ("info", "warn", "error")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = Store(tmp_path_factory.mktemp("store"))
    limits = QueryLimits(max_series=50, max_range_ns=48 * 3600 * S, timeout_s=10)
    app = create_app(store, limits=limits, clock=lambda: NOW)
    with BackgroundServer(app) as server:
        values = [
            [str(NOW - (60 - i) * S), f'level={LEVELS[i % 3]} msg="req {i}" ms={i * 10}']
            for i in range(60)
        ]
        body = json.dumps({"streams": [{"stream": {"app": "api"}, "values": values}]}).encode()
        status, _, text = http(
            server.url + "/loki/api/v1/push",
            method="POST",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert status == 204, text
        proto = push_request([('{app="db"}', [(NOW - 30 * S, 'level=error msg="db down"')])])
        status, _, text = http(
            server.url + "/loki/api/v1/push",
            method="POST",
            data=proto,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert status == 204, text
        yield server.url


def q(url: str, path: str, **params: str) -> dict[str, object]:
    result: dict[str, object] = get_json(url + path, params=params)
    return result


def test_pushed_lines_come_back_from_a_log_query(url: str) -> None:
    body = get_json(
        url + "/loki/api/v1/query_range",
        params={"query": '{app=~"api|db"} |= "error"', "limit": "3"},
    )
    result = body["data"]["result"]
    assert body["data"]["resultType"] == "streams"
    entries = [(int(ts), line) for s in result for ts, line in s["values"]]
    # the three newest error lines of either stream (api's every third line, db's at -30 s)
    assert sorted(entries, reverse=True) == [
        (NOW - (60 - i) * S, f'level=error msg="req {i}" ms={i * 10}') for i in (59, 56, 53)
    ]
    everything = get_json(
        url + "/loki/api/v1/query_range", params={"query": '{app=~"api|db"} |= "down"'}
    )
    assert everything["data"]["result"] == [
        {"stream": {"app": "db"}, "values": [[str(NOW - 30 * S), 'level=error msg="db down"']]}
    ]
    forward = get_json(
        url + "/loki/api/v1/query_range",
        params={"query": '{app="api"}', "direction": "forward", "limit": "2"},
    )
    values = forward["data"]["result"][0]["values"]
    assert [line for _, line in values] == [
        'level=info msg="req 0" ms=0',
        'level=warn msg="req 1" ms=10',
    ]


def test_metric_queries_over_pushed_lines(url: str) -> None:
    body = get_json(
        url + "/loki/api/v1/query_range",
        params={
            "query": 'sum by (level) (count_over_time({app="api"} | regexp `level=(?P<level>\\w+)`'
            " [1m]))",
            "start": str(NOW - 60 * S),
            "end": str(NOW),
            "step": "60",
        },
    )
    assert body["data"]["resultType"] == "matrix"
    by_level = {s["metric"]["level"]: s["values"][-1][1] for s in body["data"]["result"]}
    # the window (t - 1m, t] is left-open: the line at exactly NOW - 60 s (an info) is out
    assert by_level == {"info": "19", "warn": "20", "error": "20"}
    vector = get_json(
        url + "/loki/api/v1/query", params={"query": 'count_over_time({app="db"}[5m])'}
    )
    assert vector["data"]["result"] == [{"metric": {"app": "db"}, "value": [1700000000, "1"]}]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"query": '{app="api"}', "limit": "6000"}, "max entries limit"),
        (
            {"query": 'rate({app="api"}[1m])', "start": "1690000000", "end": "1700000000"},
            "time range",
        ),
        ({"query": 'rate({app="api"}[1m])', "step": "0.01"}, "maximum resolution"),
        ({"query": 'sum by (msg) (count_over_time({app="api"} | logfmt [1h]))'}, "series"),
        ({"query": '{app="api"} | unwrap ms'}, "parse error"),
        ({"query": '{app="api"'}, "line 1, col 11"),
        # found by the fuzz test: a template that does not compile is the query's fault
        ({"query": 'count_over_time({app="api"} | line_format "{{{.msg}}" [1m])'}, "template"),
    ],
)
def test_limits_and_query_errors_are_400(url: str, params: dict[str, str], needle: str) -> None:
    status, _, body = http(url + "/loki/api/v1/query_range", params=params)
    assert status == 400, body
    assert needle in body.decode()


_FRAGMENTS = st.sampled_from(
    [
        '{app="api"}',
        "{",
        "}",
        "|=",
        '"error"',
        "|~",
        '"a(b"',
        "| json",
        "| logfmt",
        '| line_format "{{.msg}}"',
        "| label_format x=y",
        "| unwrap ms",
        "[1m]",
        "[5x]",
        "rate(",
        "count_over_time(",
        "sum by (level) (",
        ")",
        "by",
        "without",
        " + ",
        " / ",
        " > ",
        "bool",
        "1",
        "1e308",
        "-",
        "topk(2,",
        "vector(1)",
        '| level="error"',
        "| ms > 10ms",
        "offset 1h",
        "quantile_over_time(0.5,",
        "absent_over_time(",
        ",",
        "on(app)",
        "group_left",
        "| drop level",
        "| keep msg",
        "| decolorize",
        "\\",
        "\x00",
        '| pattern "<_> <x>"',
        '| regexp "(?P<x>.)"',
        '| ip("1.1.1.1")',
        "#",
        "\n",
    ]
)
_SELECTORS = st.sampled_from(
    ['{app="api"}', '{app=~"a.*|db"}', '{app="db"}', '{app!="x", app=~".+"}', '{app="none"}']
)
_STAGES = st.sampled_from(
    [
        '|= "error"',
        '!= "req 1"',
        '|~ "req [0-9]+"',
        "| logfmt",
        "| json",
        '| level="error"',
        "| ms > 100",
        "| ms > 1s",
        '| line_format "{{.level}} {{.msg}}"',
        "| label_format lvl=level",
        "| drop ms",
        "| keep level",
        "| regexp `level=(?P<lv>\\w+)`",
        "| pattern `<_> msg=<m>`",
        "| decolorize",
        '| level=~"e.*" or ms < 50',
        "| __error__=``",
        '|= ip("1.2.3.4")',
    ]
)
_RANGES = st.sampled_from(["[1m]", "[5m]", "[30s]", "[1h]", "[1m] offset 1m"])
_LOG_QUERIES = st.builds(
    lambda sel, stages: sel + " " + " ".join(stages), _SELECTORS, st.lists(_STAGES, max_size=4)
)
_RANGE_AGGS = st.builds(
    lambda fn, q, r: f"{fn}({q} {r})",
    st.sampled_from(
        ["count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"]
    ),
    _LOG_QUERIES,
    _RANGES,
)
_UNWRAP_AGGS = st.builds(
    lambda fn, q, r: f"{fn}({q} | logfmt | unwrap ms {r})",
    st.sampled_from(
        [
            "sum_over_time",
            "avg_over_time",
            "max_over_time",
            "min_over_time",
            "stddev_over_time",
            "quantile_over_time(0.9,",
            "first_over_time",
            "rate_counter",
        ]
    ),
    _SELECTORS,
    _RANGES,
).map(lambda q: q.replace("(0.9,(", "(0.9, ").replace(",(", ", "))
_METRICS = st.one_of(_RANGE_AGGS, _UNWRAP_AGGS).flatmap(
    lambda inner: st.sampled_from(
        [
            inner,
            f"sum({inner})",
            f"sum by (level) ({inner})",
            f"count without (app) ({inner})",
            f"topk(2, {inner})",
            f"avg({inner}) > 0.1",
            f"{inner} / 2",
            f"{inner} * on(app) {inner}",
            f"sort_desc({inner})",
            f"vector(1) + {inner}",
        ]
    )
)


@st.composite
def _mutated(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid query with one character cut, doubled or inserted: almost-valid queries."""
    text = draw(valid)
    at = draw(st.integers(0, len(text) - 1))
    how = draw(st.sampled_from(["cut", "dup", "insert"]))
    if how == "cut":
        return text[:at] + text[at + 1 :]
    if how == "dup":
        return text[:at] + text[at] + text[at:]
    return text[:at] + draw(st.sampled_from(list('{}()[]"`|=~!,. 0a\\'))) + text[at:]


_VALID = st.one_of(_LOG_QUERIES, _METRICS)
_QUERIES = st.one_of(
    _VALID,
    _mutated(_VALID),
    st.lists(_FRAGMENTS, max_size=8).map("".join),
    st.text(max_size=40),
)
_PARAM_VALUES = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.sampled_from(
        [
            "0",
            "-1",
            "1e999",
            "nan",
            "1700000000",
            "2023-11-14T22:13:20Z",
            "15s",
            "0.001",
            "forward",
            "sideways",
            "99999999999999999999",
            "1.5",
            "",
        ]
    ),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=_QUERIES,
    start=_PARAM_VALUES,
    step=_PARAM_VALUES,
    limit=_PARAM_VALUES,
    direction=_PARAM_VALUES,
    instant=st.booleans(),
)
def test_fuzzed_requests_get_200_or_400_never_500(  # noqa: PLR0917 - one per parameter
    url: str,
    query: str,
    start: str | None,
    step: str | None,
    limit: str | None,
    direction: str | None,
    instant: bool,
) -> None:
    params = {
        "query": query,
        "start": start,
        "step": step,
        "limit": limit,
        "direction": direction,
        "time": start,
    }
    path = "/loki/api/v1/query" if instant else "/loki/api/v1/query_range"
    sent = {k: v for k, v in params.items() if v is not None}
    status, _, body = http(url + path, params=sent)
    event(f"HTTP {status}")  # --hypothesis-show-statistics shows the mix
    assert status in (200, 400), (status, sent, body)
    if status == 200:
        assert json.loads(body)["status"] == "success"
