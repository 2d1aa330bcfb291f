"""The Loki HTTP API over real loopback sockets: every route's shape, pushes (JSON and
protobuf+snappy) read back, tenants, parameters, errors, metrics, and Grafana's requests.

Query routes run against :class:`~tests.serverutil.FakeEngine` here, so what the HTTP layer
passes to the engine is checked exactly; ``test_server_e2e`` runs the real engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logpipe.server import create_app
from logpipe.server.runner import BackgroundServer
from logpipe.store import Store
from tests.serverutil import FakeEngine, get_json, http, push_request

S = 1_000_000_000
NOW = 1_700_000_000 * S
JSON = {"Content-Type": "application/json"}


class Api:
    """A running server and what it serves from."""

    def __init__(self, url: str, store: Store, engine: FakeEngine) -> None:
        self.url, self.store, self.engine = url, store, engine

    def __call__(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return http(self.url + path, **kwargs)

    def json(self, path: str, **kwargs: Any) -> Any:
        return get_json(self.url + path, **kwargs)

    def push(self, streams: list[dict[str, Any]], tenant: str | None = None) -> int:
        headers = dict(JSON)
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        body = json.dumps({"streams": streams}).encode()
        return self("/loki/api/v1/push", method="POST", data=body, headers=headers)[0]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store = Store(tmp_path_factory.mktemp("store"))
    engine = FakeEngine()
    app = create_app(store, engine=engine, clock=lambda: NOW)
    with BackgroundServer(app) as server:
        yield Api(server.url, store, engine)


@pytest.fixture(scope="module")
def loaded(api: Api) -> Api:
    """Two tenants' data, pushed once per module: JSON for ``fake``, protobuf for ``acme``."""
    values = [[str(NOW - i * S), f"api line {i}"] for i in range(5)]
    assert (
        api.push(
            [
                {"stream": {"app": "api", "env": "prod"}, "values": values},
                {"stream": {"app": "db", "env": "dev"}, "values": [[str(NOW - 2 * S), "db line"]]},
            ]
        )
        == 204
    )
    body = push_request([('{app="billing", team="x"}', [(NOW - S, "acme line")])], extras=True)
    status, _, text = api(
        "/loki/api/v1/push",
        method="POST",
        data=body,
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Scope-OrgID": "acme",
        },
    )
    assert status == 204, text
    return api


# ------------------------------------------------------------------ metadata routes


def test_labels_values_series_and_stats_shapes(loaded: Api) -> None:
    assert loaded.json("/loki/api/v1/labels") == {"status": "success", "data": ["app", "env"]}
    assert loaded.json("/loki/api/v1/label/app/values") == {
        "status": "success",
        "data": ["api", "db"],
    }
    assert loaded.json("/loki/api/v1/label/app/values", params={"query": '{env="dev"}'})[
        "data"
    ] == ["db"]
    assert loaded.json("/loki/api/v1/label/nope/values")["data"] == []
    series = loaded.json("/loki/api/v1/series", params={"match[]": ['{app="api"}', '{env="dev"}']})
    assert series == {
        "status": "success",
        "data": [{"app": "api", "env": "prod"}, {"app": "db", "env": "dev"}],
    }
    stats = loaded.json("/loki/api/v1/index/stats", params={"query": '{app="api"}'})
    assert stats == {"streams": 1, "chunks": 1, "entries": 5, "bytes": 50}
    # a full query works where a selector is expected; its pipeline does not change streams
    labels = loaded.json("/loki/api/v1/labels", params={"query": '{app="db"} |= "x"'})
    assert labels["data"] == ["app", "env"]


def test_metadata_time_range_filters_streams(loaded: Api) -> None:
    past = {"start": str(NOW - 7200 * S), "end": str(NOW - 3600 * S)}
    assert loaded.json("/loki/api/v1/labels", params=past)["data"] == []
    rfc = {"start": "2023-11-14T22:13:10Z", "end": "2023-11-14T22:13:21Z"}
    assert loaded.json("/loki/api/v1/labels", params=rfc)["data"] == ["app", "env"]


def test_post_with_form_body_works_like_get(loaded: Api) -> None:
    status, _, body = loaded(
        "/loki/api/v1/series",
        method="POST",
        data=b"match%5B%5D=%7Bapp%3D%22db%22%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and json.loads(body)["data"] == [{"app": "db", "env": "dev"}]


def test_tenants_are_isolated(loaded: Api) -> None:
    acme = {"X-Scope-OrgID": "acme"}
    assert loaded.json("/loki/api/v1/labels", headers=acme)["data"] == ["app", "team"]
    assert loaded.json("/loki/api/v1/label/app/values", headers=acme)["data"] == ["billing"]
    assert "billing" not in loaded.json("/loki/api/v1/label/app/values")["data"]
    other = {"X-Scope-OrgID": "nobody"}
    assert loaded.json("/loki/api/v1/series", headers=other)["data"] == []
    status, _, body = loaded("/loki/api/v1/labels", headers={"X-Scope-OrgID": "a/b"})
    assert status == 400 and b"X-Scope-OrgID" in body


# ------------------------------------------------------------------ query routes


def test_query_range_passes_parameters_and_returns_loki_json(loaded: Api) -> None:
    params = {
        "query": '{app="api"}',
        "start": "1699990000",
        "end": "1700000000.5",
        "step": "60000ms",
        "limit": "1000",
        "direction": "FORWARD",
    }
    body = loaded.json("/loki/api/v1/query_range", params=params, headers={"X-Scope-OrgID": "acme"})
    call = loaded.engine.calls[-1]
    assert call == {
        "kind": "range",
        "query": '{app="api"}',
        "start_ns": 1_699_990_000 * S,
        "end_ns": NOW + S // 2,
        "step_ns": 60 * S,
        "tenant": "acme",
        "direction": "forward",
        "limit": 1000,
    }
    assert body == {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [{"stream": {"app": "a"}, "values": [[str(1_699_990_000 * S), "first"]]}],
            "stats": {},
        },
    }


def test_query_range_defaults(loaded: Api) -> None:
    body = loaded.json("/loki/api/v1/query_range", params={"query": 'rate({a="b"}[1m])'})
    call = loaded.engine.calls[-1]
    assert (call["start_ns"], call["end_ns"], call["step_ns"]) == (NOW - 3600 * S, NOW, 14 * S)
    assert (call["limit"], call["direction"], call["tenant"]) == (100, "backward", "fake")
    assert body["data"]["resultType"] == "matrix"
    assert body["data"]["result"][0]["values"] == [[1_699_996_400, "1"], [1_700_000_000, "2.5"]]
    loaded.json("/loki/api/v1/query_range", params={"query": "x", "since": "15m"})
    assert loaded.engine.calls[-1]["start_ns"] == NOW - 900 * S


def test_instant_query_shapes(loaded: Api) -> None:
    vector = loaded.json("/loki/api/v1/query", params={"query": "sum(x)", "time": "1700000000"})
    assert vector["data"] == {
        "resultType": "vector",
        "stats": {},
        "result": [{"metric": {"app": "a"}, "value": [1700000000, "0.5"]}],
    }
    assert loaded.engine.calls[-1]["time_ns"] == NOW
    scalar = loaded.json("/loki/api/v1/query", params={"query": "scalar"})
    assert scalar["data"]["result"] == [1700000000, "2"]
    streams = loaded.json("/loki/api/v1/query", params={"query": '{a="b"}'})
    assert streams["data"]["resultType"] == "streams"


@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/loki/api/v1/query_range", {}, '"query"'),
        ("/loki/api/v1/query_range", {"query": "x", "start": "yesterday"}, '"start"'),
        ("/loki/api/v1/query_range", {"query": "x", "end": "2023-13-01T00:00:00Z"}, '"end"'),
        ("/loki/api/v1/query_range", {"query": "x", "step": "fast"}, '"step"'),
        ("/loki/api/v1/query_range", {"query": "x", "step": "-1"}, "zero or negative"),
        ("/loki/api/v1/query_range", {"query": "x", "start": "20", "end": "10"}, "before start"),
        ("/loki/api/v1/query_range", {"query": "x", "limit": "0"}, "positive"),
        ("/loki/api/v1/query_range", {"query": "x", "direction": "up"}, '"direction"'),
        ("/loki/api/v1/query", {"query": "x", "time": "noon"}, '"time"'),
        ("/loki/api/v1/labels", {"since": "ever"}, '"since"'),
        ("/loki/api/v1/label/app/values", {"query": '{app="x"'}, "line 1, col 9"),
        ("/loki/api/v1/series", {"match[]": "app"}, "parse error at line 1"),
        ("/loki/api/v1/series", {"match[]": '{app=""}'}, ""),
        ("/loki/api/v1/index/stats", {}, '"query"'),
        ("/loki/api/v1/format_query", {"query": "{"}, "parse error"),
    ],
)
def test_bad_parameters_are_400_naming_the_problem(
    api: Api, path: str, params: dict[str, str], needle: str
) -> None:
    status, headers, body = api(path, params=params)
    assert status == 400, body
    assert headers["content-type"].startswith("text/plain")
    assert needle in body.decode()
    assert b"Traceback" not in body


def test_format_query(api: Api) -> None:
    body = api.json("/loki/api/v1/format_query", params={"query": '{app="a"}|="x"'})
    assert body == {"status": "success", "data": '{app="a"} |= "x"'}


# ------------------------------------------------------------------ push


def test_push_errors_and_partial_rejection(api: Api) -> None:
    status, _, body = api("/loki/api/v1/push", method="POST", data=b"{", headers=JSON)
    assert status == 400 and b"not valid JSON" in body
    status, _, body = api("/loki/api/v1/push", method="POST", data=b"garbage")
    assert status == 400 and b"snappy" in body
    status, _, body = api("/loki/api/v1/push", method="POST", data=b'{"streams": []}', headers=JSON)
    assert status == 204
    tenant = "partial"
    values = [[str(NOW), "ok"], [str(NOW + 1), "two\nlines"]]
    headers = {**JSON, "X-Scope-OrgID": tenant}
    status, _, body = api(
        "/loki/api/v1/push",
        method="POST",
        headers=headers,
        data=json.dumps({"streams": [{"stream": {"a": "b"}, "values": values}]}).encode(),
    )
    assert status == 204, body  # a multi-line entry (Promtail's multiline stage) is kept whole
    assert api.store.stats(tenant).entries == 2


def test_push_body_size_limit(tmp_path: Path) -> None:
    app = create_app(Store(tmp_path), engine=FakeEngine(), max_push_bytes=1000)
    with BackgroundServer(app) as server:
        status, _, body = http(
            server.url + "/loki/api/v1/push", method="POST", data=b"x" * 5000, headers=JSON
        )
    assert status == 400 and b"limit" in body


# ------------------------------------------------------------------ service routes


def test_ready_buildinfo_openapi(api: Api) -> None:
    status, _, body = api("/ready")
    assert (status, body) == (200, b"ready")
    info = api.json("/loki/api/v1/status/buildinfo")
    assert {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(info)
    schema = api.json("/openapi.json")
    paths = schema["paths"]
    for path in (
        "/loki/api/v1/query",
        "/loki/api/v1/query_range",
        "/loki/api/v1/labels",
        "/loki/api/v1/label/{name}/values",
        "/loki/api/v1/series",
        "/loki/api/v1/index/stats",
        "/loki/api/v1/push",
    ):
        assert path in paths, path
    names = {p["name"] for p in paths["/loki/api/v1/query_range"]["get"]["parameters"]}
    assert {"query", "start", "end", "step", "limit", "direction", "X-Scope-OrgID"} <= names


def test_metrics_count_requests_pushes_and_queries(loaded: Api) -> None:
    loaded.json("/loki/api/v1/query_range", params={"query": '{a="b"}'})
    loaded("/loki/api/v1/query_range")  # a 400
    loaded("/no/such/route")
    status, headers, body = loaded("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert (
        'logpipe_http_requests_total{method="GET",route="/loki/api/v1/query_range",status="400"}'
    ) in text
    assert 'route="unmatched",status="404"' in text
    assert 'logpipe_pushed_lines_total{tenant="fake"} 6.0' in text
    assert 'logpipe_pushed_lines_total{tenant="acme"} 1.0' in text
    assert 'logpipe_query_duration_seconds_count{route="query_range"}' in text


def test_unexpected_engine_errors_are_one_line_500s(tmp_path: Path) -> None:
    class Broken(FakeEngine):
        def query_range(self, query: str, **kwargs: Any) -> Any:
            raise ZeroDivisionError("boom")

        def query_instant(self, query: str, **kwargs: Any) -> Any:
            raise NotImplementedError

    with BackgroundServer(create_app(Store(tmp_path), engine=Broken())) as server:
        status, _, body = http(server.url + "/loki/api/v1/query_range", params={"query": "x"})
        assert (status, body) == (500, b"internal error: ZeroDivisionError: boom")
        status, _, body = http(server.url + "/loki/api/v1/query", params={"query": "x"})
        assert status == 501 and b"not implemented" in body
        assert http(server.url + "/ready")[0] == 200  # still serving


def test_store_errors_are_500_with_the_message(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.ingest("fake", {"a": "b"}, [NOW], [b"x"])
    (tmp_path / "tenants" / "fake" / "manifest.json").write_bytes(b"{not json")
    with BackgroundServer(create_app(store, engine=FakeEngine())) as server:
        status, _, body = http(server.url + "/loki/api/v1/labels")
    assert status == 500 and b"manifest is damaged" in body and b"Traceback" not in body


# ------------------------------------------------------------------ Grafana


def test_grafana_loki_data_source_replay(loaded: Api) -> None:
    """The requests Grafana's Loki data source sends (pkg/tsdb/loki and the query editor),
    with its parameter spellings: ns times, ``step`` in ms, ``direction=backward``,
    ``limit=1000``, the query-tags header."""
    start, end = str(NOW - 3600 * S), str(NOW)
    headers = {"X-Query-Tags": "Source=grafana", "User-Agent": "Grafana/11.0.0"}
    sequence: list[tuple[str, dict[str, Any]]] = [
        ("/loki/api/v1/status/buildinfo", {}),
        ("/loki/api/v1/query", {"query": "vector(1)+vector(1)", "time": end}),  # health check
        ("/loki/api/v1/labels", {"start": start, "end": end}),
        ("/loki/api/v1/label/app/values", {"start": start, "end": end}),
        ("/loki/api/v1/label/env/values", {"start": start, "end": end, "query": '{app="api"}'}),
        ("/loki/api/v1/series", {"match[]": '{app="api"}', "start": start, "end": end}),
        ("/loki/api/v1/index/stats", {"query": '{app="api"}', "start": start, "end": end}),
        (
            "/loki/api/v1/query_range",
            {
                "query": '{app="api"} |= "line"',
                "start": start,
                "end": end,
                "step": "2000ms",
                "direction": "backward",
                "limit": "1000",
            },
        ),
        (
            "/loki/api/v1/query_range",
            {
                "query": 'sum by (level) (count_over_time({app="api"}[2s]))',
                "start": start,
                "end": end,
                "step": "2000ms",
                "direction": "backward",
                "limit": "1000",
            },
        ),
        (
            "/loki/api/v1/query",
            {
                "query": 'count_over_time({app="api"}[5m])',
                "time": end,
                "direction": "backward",
                "limit": "1000",
            },
        ),
    ]
    answers = [loaded.json(path, params=params, headers=headers) for path, params in sequence]
    assert answers[0]["version"]
    for body in answers[2:6]:
        assert body["status"] == "success" and isinstance(body["data"], list)
    assert answers[4]["data"] == ["prod"]
    assert set(answers[6]) == {"streams", "chunks", "entries", "bytes"}
    assert answers[7]["data"]["resultType"] == "streams"
    assert answers[8]["data"]["resultType"] == "matrix"
    assert answers[9]["data"]["resultType"] == "vector"
    assert loaded.engine.calls[-2]["step_ns"] == 2 * S
