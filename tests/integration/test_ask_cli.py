"""``logpipe ask`` over a local store: the query, its explanation, the backend and the
result table; --json, --dry-run, --explain, --examples; cannot-answer and usage exit codes;
the template cache lands in the cache directory. (Without an adapter, ``auto`` is
retrieval; the tests that do not name a backend rely on that, and the fixture sets
$LOGPIPE_NL2LOGQL_ADAPTER to ``none`` so the packaged adapter is not used.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logpipe.cli import main
from logpipe.logql import parse_query
from tests.nlfakes import webshop_store

QUESTION = "how many failed login events per host in the last 2 hours?"


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("LOGPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LOGPIPE_NL2LOGQL_ADAPTER", "none")
    _, end = webshop_store(tmp_path / "store")
    return str(tmp_path / "store"), str(end)


def test_the_answer_is_printed_with_its_query_and_meaning(
    store_dir: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, end = store_dir
    assert main(["ask", QUESTION, "--store", root, "--to", end, "--backend", "retrieval"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines()
             if line[:9].rstrip() in ("backend", "query", "meaning")}  # fmt: skip
    assert lines["backend"] == "retrieval: retrieval of the nearest examples, as asked"
    parse_query(lines["query"])
    assert "[2h]" in lines["query"] and lines["meaning"].startswith("Counts lines of")
    assert "vector: " in out and '{host="web' in out  # the result table
    assert list((tmp_path / "cache" / "ask").glob("templates-*.json"))  # cached for next time


def test_json_is_the_api_body(
    store_dir: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, end = store_dir
    assert main(["ask", QUESTION, "--store", root, "--to", end, "--json", "--explain"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "answered" and body["backend"] == "retrieval"
    assert body["result"]["data"]["resultType"] == "vector" and body["candidates"]


def test_dry_run_and_explain(
    store_dir: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, end = store_dir
    code = main(["ask", "show the cache flushed lines", "--store", root, "--to", end,
                 "--dry-run", "--explain", "--candidates", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "(dry run: not executed)" in out
    assert "context given to the backend:" in out and "label host: " in out
    assert out.count("\n  1. ") == 1 and "\n  2. " in out and "valid, 1 vote(s)" in out


def test_user_examples_are_used(
    store_dir: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, end = store_dir
    examples = tmp_path / "examples.jsonl"
    mine = 'sum by (level) (count_over_time({app="webshop"}[1h]))'
    examples.write_text(json.dumps({"question": "how noisy is the shop", "query": mine}) + "\n"
                        + '{"question": "broken", "query": "sum("}\n')  # fmt: skip
    assert main(["ask", "how noisy is the shop", "--store", root, "--to", end, "--json",
                 "--examples", str(examples)]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["query"] == mine


def test_an_empty_store_cannot_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["ask", "how many errors?", "--store", str(tmp_path / "empty")]) == 1
    assert "cannot answer: no candidate was a valid LogQL query" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "q"], "give either --store DIR or --addr URL"),
        (["ask", "q", "--store", ".", "--addr", "http://x"], "give either"),
        (["ask", "q", "--addr", "http://127.0.0.1:9", "--examples", __file__], "local store"),
        (["ask", "q", "--store", ".", "--candidates", "0"], "--candidates"),
        (["ask", " ", "--store", "."], "question: empty"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_ask_is_a_listed_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "ask" in capsys.readouterr().out
    assert main(["ask", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out
