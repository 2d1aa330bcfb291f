"""``POST /api/v1/ask`` over a real loopback socket: answers with Loki JSON, dry runs, the
details, tenants, a stub model whose garbage never runs, and 400s that say where."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logpipe.logql import parse_query
from logpipe.nl.ask import Asker
from logpipe.nl.backends import ModelCache
from logpipe.nl.prompt import Prompt
from logpipe.server import create_app
from logpipe.server.runner import BackgroundServer
from tests.engines import RecordingEngine
from tests.nlfakes import webshop_store
from tests.serverutil import http

JSON = {"Content-Type": "application/json"}
GARBAGE = ["SELECT 1", 'sum(count_over_time({app="webshp"} |= "Failed login" [1 hour]',
           "3", '{app=~".*"}']  # fmt: skip


class Garbage:
    def generate(self, prompt: Prompt, n: int) -> list[str]:
        return (GARBAGE * n)[:n]


class Api:
    def __init__(self, url: str, engine: RecordingEngine) -> None:
        self.url, self.engine = url, engine

    def ask(self, body: Any, tenant: str | None = None, raw: bytes | None = None) -> tuple[
        int, Any
    ]:  # fmt: skip
        headers = dict(JSON)
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        data = raw if raw is not None else json.dumps(body).encode()
        status, _, text = http(self.url + "/api/v1/ask", method="POST", data=data,
                               headers=headers)  # fmt: skip
        return status, (json.loads(text) if status == 200 else text.decode())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store, end = webshop_store(tmp_path_factory.mktemp("store"))
    engine = RecordingEngine(store)
    asker = Asker(store, engine, models=ModelCache(loader=lambda adapter: Garbage()),
                  clock=lambda: end)  # fmt: skip
    app = create_app(store, engine=engine, clock=lambda: end, asker=asker)
    with BackgroundServer(app) as server:
        yield Api(server.url, engine)


def test_a_question_gets_a_validated_query_and_its_loki_result(api: Api) -> None:
    status, body = api.ask({"question": "how many failed login events per host in the last "
                                        "2 hours?"})  # fmt: skip
    assert status == 200, body
    assert body["status"] == "answered" and body["backend"] == "retrieval"
    parse_query(body["query"])
    assert "Failed login" in body["query"] and "[2h]" in body["query"]
    assert body["explanation"].startswith('Counts lines of {app="webshop"')
    assert body["result"]["status"] == "success"
    assert body["result"]["data"]["resultType"] == "vector" and body["result"]["data"]["result"]
    assert isinstance(body["seconds"], float) and "candidates" not in body


def test_dry_run_and_details(api: Api) -> None:
    before = len(api.engine.queries)
    status, body = api.ask({"question": "show the cache flushed lines", "dry_run": True,
                            "explain": True, "candidates": 2})  # fmt: skip
    assert status == 200 and body["status"] == "answered" and "result" not in body
    assert len(api.engine.queries) == before  # nothing ran
    assert len(body["candidates"]) == 2 and body["context"]["labels"]["app"] == ["webshop"]
    assert set(body["timings"]) >= {"generate_s", "validate_s"}


def test_a_tenant_sees_only_its_own_data(api: Api) -> None:
    status, body = api.ask({"question": "show the cache flushed lines"}, tenant="other")
    assert status == 200 and body["status"] == "cannot_answer" and "result" not in body


def test_garbage_from_the_model_never_runs(api: Api) -> None:
    before = len(api.engine.queries)
    status, body = api.ask({"question": "how many failed logins?", "backend": "model",
                            "explain": True, "candidates": 4})  # fmt: skip
    assert status == 200 and body["backend"] == "model"
    ran = api.engine.queries[before:]
    for query in ran:
        parse_query(query)  # only valid LogQL ever reaches the engine
    assert ran[-1] == 'sum(count_over_time({app="webshop"} |= "Failed login" [1h]))'  # repaired
    # before it, only the grounding probe of its line filter (logpipe.nl.ground)
    assert set(ran[:-1]) <= {'{app="webshop"} |= "Failed login"'}
    assert body["query"] == ran[-1]
    rejected = [c for c in body["candidates"] if c["query"] is None]
    assert {c["raw"] for c in rejected} == {"SELECT 1", "3", '{app=~".*"}'}


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        (None, b'{"question": "x",}', "invalid body: invalid JSON at line 1, column 18"),
        (None, b'{\n  "question": \n}', "invalid JSON at line 3, column 1"),
        (None, b"\xff\xfe", "not UTF-8 at byte 0"),
        (["question"], None, "must be a JSON object"),
        ({}, None, 'invalid field "question": missing'),
        ({"question": "x", "candidate": 3}, None, 'invalid field "candidate": unknown field'),
        ({"question": "x", "candidates": "3"}, None, 'invalid field "candidates": must be'),
        ({"question": "x", "candidates": 99}, None, "from 1 to 16"),
        ({"question": "x", "dry_run": "yes"}, None, 'invalid field "dry_run"'),
        ({"question": "x", "since": "soon"}, None, 'invalid field "since"'),
        ({"question": "x", "end": "yesterday"}, None, 'invalid parameter "end"'),
        ({"question": "  "}, None, "question: empty"),
        ({"question": "x", "backend": "oracle"}, None, "backend 'oracle'"),
        ({"question": "x" * 70_000}, None, "the limit is 65536"),
    ],
)
def test_bad_requests_are_400_and_say_where(
    api: Api, body: Any, raw: bytes | None, message: str
) -> None:
    status, text = api.ask(body, raw=raw)
    assert status == 400 and message in text, text


def test_the_route_is_in_the_openapi_schema(api: Api) -> None:
    status, _, text = http(api.url + "/openapi.json")
    schema = json.loads(text)
    assert status == 200 and "post" in schema["paths"]["/api/v1/ask"]
    body = schema["paths"]["/api/v1/ask"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["question"]


def test_cli_ask_over_the_server(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    from logpipe.cli import main

    code = main(["ask", "how many failed login events per host in the last 2 hours?",
                 "--addr", api.url, "--json"])  # fmt: skip
    body = json.loads(capsys.readouterr().out)
    assert code == 0 and body["status"] == "answered" and body["result"]["status"] == "success"
    code = main(["ask", "how many failed logins?", "--addr", api.url, "--backend", "model",
                 "--candidates", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and 'query     sum(count_over_time({app="webshop"}' in out
    assert main(["ask", "x", "--addr", api.url, "--candidates", "3", "--since", "soon"]) == 2
    assert 'invalid field "since"' in capsys.readouterr().err


def test_a_default_app_answers_from_the_store(tmp_path: Path) -> None:
    store, end = webshop_store(tmp_path / "store")
    with BackgroundServer(create_app(store, clock=lambda: end)) as server:
        status, _, text = http(server.url + "/api/v1/ask", method="POST", headers=JSON,
                               data=b'{"question": "show the cache flushed lines", '
                                    b'"backend": "retrieval"}')  # fmt: skip
    body = json.loads(text)
    assert status == 200 and body["status"] == "answered" and body["result"]["data"]["result"]
