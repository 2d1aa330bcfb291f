"""The ask service over a real store: every executed query was validated first (a stub
model that returns garbage and near misses), retrieval answers from the store's own
examples, dry runs execute nothing, and what the store knows is kept until it changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from logpipe.errors import LogQLError, UsageError
from logpipe.logql import parse_query
from logpipe.logql.engine import Engine
from logpipe.logql.units import parse_duration
from logpipe.nl.ask import Asker, AskRequest
from logpipe.nl.backends import (
    BackendChoice,
    ModelCache,
    RetrievalGenerator,
    choose_backend,
    find_adapter,
    with_range,
)
from logpipe.nl.baseline import RetrievalBaseline
from logpipe.nl.data import Pair
from logpipe.nl.prompt import Prompt
from logpipe.nl.tree import walk
from logpipe.store import Store
from tests.engines import RecordingEngine
from tests.nlfakes import webshop_store

HOUR = 3_600_000_000_000
GARBAGE = [
    "SELECT count(*) FROM logs WHERE msg LIKE '%failed%'",  # not LogQL at all
    "I cannot help with that.",
    '{app=~".*"}',  # parses, but Loki refuses a selector that matches everything
    'sum(count_over_time({app="webshp"} |= "Failed login" [1 hour]',  # near miss: 3 repairs
    "{app='webshop'} |= 'Cache flushed'",  # near miss: single quotes
    'rate({app="webshop"} |= "Order" )',  # near miss: no range
    'topk(0, count_over_time({app="webshop"}[5m]))',  # parses; k must be > 0
    '{app="webshop"} | line_format "{{ nosuchfunction .a }}"',  # template does not compile
]


class StubModel:
    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.prompts: list[Prompt] = []

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        self.prompts.append(prompt)
        return (self.replies * n)[:n]


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Store, int]:
    return webshop_store(tmp_path / "store")


def _asker(store: Store, engine: Any, model: StubModel | None = None, **kw: Any) -> Asker:
    models = ModelCache(loader=lambda adapter: model) if model is not None else None
    return Asker(store, engine, models=models, **kw)


def test_every_executed_query_was_validated_first(shop: tuple[Store, int]) -> None:
    store, end = shop
    engine = RecordingEngine(store)
    model = StubModel(GARBAGE)
    asker = _asker(store, engine, model)
    result = asker.ask(AskRequest("how many failed logins?", backend="model", end_ns=end,
                                  candidates=len(GARBAGE)))  # fmt: skip
    assert result.backend.name == "model"
    assert engine.queries, "the repaired near misses ran"
    for query in engine.queries:
        parse_query(query)  # raises if anything unvalidated had run
    for text in GARBAGE:
        assert text not in engine.queries
    fates = {c.raw: c for c in result.answer.candidates}
    for rejected in GARBAGE[:3] + GARBAGE[6:]:
        assert fates[rejected].query is None and fates[rejected].error
    repaired = fates[GARBAGE[3]]
    assert repaired.query == ('sum(count_over_time({app="webshop"} |= "Failed login" [1h]))')
    assert "balanced brackets and strings" in repaired.repairs
    assert 'app="webshp" -> "webshop"' in repaired.repairs
    assert result.status == "answered" and result.query in engine.queries


def test_garbage_only_is_cannot_answer_with_a_valid_closest_query(shop: tuple[Store, int]) -> None:
    store, end = shop
    engine = RecordingEngine(store)
    asker = _asker(store, engine, StubModel(GARBAGE[:3]))
    result = asker.ask(AskRequest("how many failed logins?", backend="model", end_ns=end))
    assert result.status == "cannot_answer" and result.query is None
    assert engine.queries == [] and not result.executed
    assert result.answer.closest is not None
    parse_query(result.answer.closest)
    body = result.to_json()
    assert body["closest_query"] == result.answer.closest and "result" not in body


def test_retrieval_answers_from_the_stores_own_examples(shop: tuple[Store, int]) -> None:
    store, end = shop
    engine = RecordingEngine(store)
    asker = Asker(store, engine)
    result = asker.ask(AskRequest("how many failed login events for webshop in the last 2 "
                                  "hours?", end_ns=end))  # fmt: skip
    assert result.backend.name == "retrieval" and "no fine-tuned adapter" in result.backend.note
    assert result.status == "answered" and result.executed
    assert result.query is not None and "Failed login" in result.query
    ranges = [n.range_nanos for n in walk(parse_query(result.query)) if hasattr(n, "range_nanos")]
    assert ranges == [2 * HOUR]  # the question's window, not the example's
    assert result.answer.result is not None and engine.queries
    body = result.to_json(details=True)
    assert body["status"] == "answered" and body["result"]["status"] == "success"
    assert body["explanation"].startswith('Counts lines of {app="webshop"')
    assert body["context"]["templates"] and body["candidates"]
    assert set(body["context"]["labels"]) == {"app", "host", "level"}


def test_a_dry_run_executes_nothing(shop: tuple[Store, int]) -> None:
    store, end = shop
    engine = RecordingEngine(store)
    result = Asker(store, engine).ask(AskRequest("show the cache flushed lines of webshop",
                                                 dry_run=True, end_ns=end))  # fmt: skip
    assert result.status == "answered" and result.query is not None
    assert engine.queries == [] and result.answer.result is None and not result.executed


def test_what_the_store_knows_is_kept_until_it_changes(shop: tuple[Store, int]) -> None:
    store, _ = shop
    asker = Asker(store, Engine(store))
    known = asker.knowledge("fake")
    assert asker.knowledge("fake") is known
    assert known.app_label == "app" and known.examples
    store.ingest("fake", {"app": "billing", "host": "b1", "level": "INFO"},
                 np.array([10**18], dtype=np.int64), [b"Invoice 7 sent"])  # fmt: skip
    again = asker.knowledge("fake")
    assert again is not known and "billing" in again.schema.labels["app"]


def test_user_examples_come_first(shop: tuple[Store, int]) -> None:
    store, end = shop
    mine = Pair(
        "how bad is it",
        'sum(count_over_time({app="webshop", level="WARN"}[1h]))',
        parse_query('sum(count_over_time({app="webshop", level="WARN"}[1h]))'),
        "webshop",
    )
    asker = Asker(store, Engine(store), examples=[mine])
    result = asker.ask(AskRequest("how bad is it", end_ns=end, dry_run=True))
    assert result.query == mine.query


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (AskRequest(" "), "question: empty"),
        (AskRequest("x" * 1001), "the limit is 1000"),
        (AskRequest("q", candidates=0), "candidates: 0"),
        (AskRequest("q", candidates=17), "candidates: 17"),
        (AskRequest("q", since_ns=0), "since"),
        (AskRequest("q", backend="oracle"), "backend 'oracle'"),
    ],
)
def test_bad_requests_are_usage_errors(
    shop: tuple[Store, int], request_: AskRequest, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        Asker(shop[0], Engine(shop[0])).ask(request_)


def test_the_backend_is_the_model_only_with_an_adapter_or_when_named(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert find_adapter(None, env={}, packaged=tmp_path / "none") is None
    assert find_adapter(None, env={}, packaged=adapter) == adapter
    assert find_adapter(None, env={"LOGPIPE_NL2LOGQL_ADAPTER": "none"}, packaged=adapter) is None
    assert find_adapter(None, env={"LOGPIPE_NL2LOGQL_ADAPTER": str(adapter)}) == adapter
    with pytest.raises(UsageError, match=r"no adapter_config\.json"):
        find_adapter(tmp_path / "none", env={})
    assert choose_backend("auto", None).name == "retrieval"
    assert choose_backend("auto", adapter) == BackendChoice(
        "model", adapter, f"SmolLM2-135M with the adapter {adapter}"
    )
    untuned = choose_backend("model", None)
    assert untuned.name == "model" and "untuned" in untuned.note
    assert choose_backend("retrieval", adapter).name == "retrieval"


def test_retrieval_puts_the_questions_window_into_every_range() -> None:
    query = 'sum(rate({a="b"}[5m])) / sum(count_over_time({a="b"}[5m] offset 1h))'
    moved = with_range(parse_query(query), parse_duration("6h"))
    assert [n.range_nanos for n in walk(moved) if hasattr(n, "range_nanos")] == [6 * HOUR] * 2
    pair = Pair("rate of lines for b", 'sum(rate({a="b"}[5m]))',
                parse_query('sum(rate({a="b"}[5m]))'), "b")  # fmt: skip
    generator = RetrievalGenerator(RetrievalBaseline([pair], app_label="a"), {"a": ["b"]})
    prompt = Prompt([], question="what is the rate of lines for b over the past 6 hours")
    assert generator.generate(prompt, 2) == ['sum(rate({a="b"}[6h]))']
    assert generator.generate(Prompt([], question="rate of lines for b"), 1) == [pair.query]


def test_a_store_without_data_cannot_answer(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty")
    result = Asker(store, Engine(store)).ask(AskRequest("how many errors?"))
    assert result.status == "cannot_answer" and result.answer.closest is None
    with pytest.raises(LogQLError):
        parse_query(result.answer.explanation)  # a sentence, not a query
