"""The hybrid parser with stub models: garbage never reaches the output, the cache answers
repeat groups and merges, the budget degrades instead of stalling, state round-trips,
and ``logpipe parse --parser llm`` / the parse stage carry only checked templates."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from logpipe.commands import parse_job
from logpipe.commands.parse_job import LLMOptions, ParseOptions, run_parse
from logpipe.errors import ModelError, StateError, UsageError
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import LazyBackend, ParseRequest, TemplateBackend, make_backend
from logpipe.parsing.masking import VAR
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.parsing.params import template_regex
from logpipe.pipeline import ParseStage, StoreSink
from logpipe.records import raw_batch
from logpipe.store import Store

GARBAGE = [
    "",
    "<*>",
    "I think the template is probably something like this.",
    "Sure! Here is the template:\n",
    "<*> <*> <*> <*> <*> <*> <*> <*> <*> <*> <*> <*>",
    "GARBAGE-TEMPLATE <*>",
    "\x00\x01\x02",
    "x" * 10_000,
]


def _lines(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    events = [
        "session opened for user {u} by (uid={n})",
        "Accepted password for {u} from 10.0.{a}.{b} port {n} ssh2",
        "disk {d} is {n}% full",
        "job {n} finished in {n} ms on node-{a}",
        "open {w} ok",
    ]
    users = ["root", "alice", "bob"]
    out = []
    for _ in range(n):
        out.append(rng.choice(events).format(
            u=rng.choice(users), n=rng.randint(0, 9999), a=rng.randint(0, 255),
            b=rng.randint(0, 255), d=rng.choice(["sda", "sdb"]),
            w=rng.choice(["eth0", "wlan1", "lo"])))  # fmt: skip
    return out


class GarbageBackend:
    """Answers every request with a different kind of garbage."""

    name = "garbage"

    def __init__(self) -> None:
        self.requests: list[ParseRequest] = []

    def propose(self, request: ParseRequest) -> str:
        self.requests.append(request)
        return GARBAGE[len(self.requests) % len(GARBAGE)]


class FunctionBackend:
    """Answers with ``answer(request)``; can advance a fake clock per call (a slow model)."""

    name = "function"

    def __init__(self, answer: Callable[[ParseRequest], str], clock: FakeClock | None = None,
                 call_secs: float = 0.0) -> None:  # fmt: skip
        self.answer = answer
        self.clock = clock
        self.call_secs = call_secs
        self.requests: list[ParseRequest] = []

    def propose(self, request: ParseRequest) -> str:
        self.requests.append(request)
        if self.clock is not None:
            self.clock.now += self.call_secs
        return self.answer(request)


class FailingBackend:
    name = "failing"

    def propose(self, request: ParseRequest) -> str:
        raise ModelError("endpoint down")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _parse(parser: LLMParser, lines: list[str]) -> tuple[list[str], list[str]]:
    text = pa.array(lines, pa.string())
    templates, events = parser.line_templates(parser.add_batch(text), text)
    return [str(t) for t in templates.to_pylist()], [str(e) for e in events.to_pylist()]


def _assert_valid(lines: list[str], templates: list[str]) -> None:
    for line, template in zip(lines, templates, strict=True):
        assert template_regex(template).fullmatch(line), (template, line)
        assert "GARBAGE" not in template and "template" not in template.lower()


UNLIMITED = LLMParserConfig(max_calls_per_second=0)


def test_garbage_answers_never_reach_the_output() -> None:
    backend = GarbageBackend()
    parser = LLMParser(backend, config=UNLIMITED)
    lines = _lines(1, 600)
    templates, _ = _parse(parser, lines)
    _assert_valid(lines, templates)
    assert backend.requests  # the model was asked...
    assert parser.stats.accepted == 0  # ...and nothing it said was taken
    assert parser.stats.rejected + parser.stats.repaired == parser.stats.model_calls
    baseline = LLMParser(None)
    assert _parse(baseline, lines)[0] == templates  # the statistical templates, unchanged


def test_requests_hold_a_few_diverse_lines_of_one_group_and_demonstrations() -> None:
    backend = GarbageBackend()
    parser = LLMParser(backend, config=LLMParserConfig(max_calls_per_second=0, batch_lines=3))
    _parse(parser, _lines(2, 400))
    for request in backend.requests:
        assert 1 <= len(request.lines) <= 3
        assert len(set(request.lines)) == len(request.lines)
        assert all(template_regex(request.statistical).fullmatch(x) for x in request.lines)
        assert len(request.demonstrations) == 3


def _generalise_first_word(request: ParseRequest) -> str:
    """A model that says the second token (``eth0``, ``wlan1``...) is a variable."""
    tokens = request.statistical.split()
    if tokens[0] == "open":
        tokens[1] = VAR
    return " ".join(tokens)


def test_the_cache_answers_repeat_groups_and_merges_groups_the_miner_split() -> None:
    backend = FunctionBackend(_generalise_first_word)
    parser = LLMParser(backend, config=UNLIMITED)
    lines = ["open eth0 ok", "open eth0 ok", "open wlan1 ok", "open lo ok"]
    templates, events = _parse(parser, lines)
    assert templates == ["open <*> ok"] * 4
    assert len(set(events)) == 1  # one event where the miner had three groups
    assert len(parser.miner.clusters()) == 3
    assert parser.stats.model_calls == 1  # the first group; the others hit the cache
    assert parser.stats.cache_hits == 2
    assert parser.stats.merges == 2
    calls = parser.stats.model_calls
    _parse(parser, ["open eth0 ok", "open ppp9 ok"])  # warm: no call at all
    assert parser.stats.model_calls == calls


def test_a_failing_backend_keeps_the_statistical_templates() -> None:
    parser = LLMParser(FailingBackend(), config=UNLIMITED)
    lines = _lines(3, 200)
    templates, _ = _parse(parser, lines)
    assert templates == _parse(LLMParser(None), lines)[0]
    assert parser.stats.backend_errors == parser.stats.model_calls > 0


def test_the_budget_degrades_a_burst_to_statistical_templates_then_asks_again() -> None:
    clock = FakeClock()
    slow = FunctionBackend(lambda r: r.statistical, clock=clock, call_secs=5.0)
    config = LLMParserConfig(max_calls_per_second=1.0, burst=2)
    parser = LLMParser(slow, config=config, clock=clock)
    burst = [f"event{i} happened {i}" for i in range(10)]  # ten new events at once
    templates, _ = _parse(parser, burst)
    _assert_valid(burst, templates)
    assert parser.stats.model_calls == 2  # the burst, not ten slow calls
    assert parser.stats.deferred == 8
    assert clock.now == 10.0  # two calls of 5 s; the rest did not wait
    _parse(parser, burst)  # no time passed outside calls: nothing re-asked yet
    assert parser.stats.model_calls == 2
    clock.now += 3.0  # three calls' worth of budget (at most the burst of 2)
    _parse(parser, burst)
    assert parser.stats.model_calls == 4


def test_a_batch_job_waits_for_the_budget_instead_of_deferring() -> None:
    clock = FakeClock()
    slow = FunctionBackend(lambda r: r.statistical, clock=clock, call_secs=0.5)

    def sleep(secs: float) -> None:
        clock.now += secs

    config = LLMParserConfig(max_calls_per_second=2.0, burst=2, wait_for_budget=True)
    parser = LLMParser(slow, config=config, clock=clock, sleep=sleep)
    burst = [f"event{i} happened {i}" for i in range(10)]
    templates, _ = _parse(parser, burst)
    _assert_valid(burst, templates)
    assert parser.stats.model_calls == 10 and parser.stats.deferred == 0
    # two from the burst, then one every 0.5 s of waiting, plus 0.5 s inside each call
    assert clock.now == pytest.approx(10 * 0.5 + 8 * 0.5)


def test_state_round_trips_with_the_same_ids(tmp_path: Path) -> None:
    backend = FunctionBackend(_generalise_first_word)
    parser = LLMParser(backend, config=UNLIMITED)
    lines = _lines(4, 300)
    _, events = _parse(parser, lines)
    path = tmp_path / "state.json"
    parser.save(path)
    again = LLMParser.load(path, backend, config=UNLIMITED)
    calls = len(backend.requests)
    assert _parse(again, lines)[1] == events
    assert len(backend.requests) == calls  # everything resolved before: no call
    path.write_text('{"format": "logpipe-llm-parser", "version": 1, "miner": {}}')
    with pytest.raises(StateError):
        LLMParser.load(path)
    path.write_text('{"format": "logpipe-miner", "version": 2}')
    with pytest.raises(StateError, match="--parser stat"):
        LLMParser.load(path)


def test_parse_command_with_a_garbage_model_writes_only_valid_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = GarbageBackend()

    def fake_make_backend(kind: str, **_: object) -> TemplateBackend:
        assert kind == "local"
        return backend

    monkeypatch.setattr(parse_job, "make_backend", fake_make_backend)
    log = tmp_path / "app.log"
    lines = _lines(5, 3000)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    report = run_parse(ParseOptions(paths=[str(log)], log_format="<Content>", out_dir=out,
                                    parser="llm", llm=LLMOptions(max_calls_per_second=0),
                                    state_out=tmp_path / "state.json"))  # fmt: skip
    assert report.llm is not None and report.llm["model_calls"] == len(backend.requests) > 0
    with (out / "app.log_structured.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Content"] for r in rows] == lines
    _assert_valid([r["Content"] for r in rows], [r["EventTemplate"] for r in rows])
    with (out / "app.log_templates.csv").open(newline="", encoding="utf-8") as fh:
        templates = {r["EventId"]: r["EventTemplate"] for r in csv.DictReader(fh)}
    assert {r["EventId"]: r["EventTemplate"] for r in rows} == templates
    assert LLMParser.load(tmp_path / "state.json").stats.model_calls == report.llm["model_calls"]


def test_the_parse_stage_with_a_garbage_model_emits_checked_templates(tmp_path: Path) -> None:
    stage = ParseStage(LLMParser(GarbageBackend(), config=UNLIMITED),
                       state_path=tmp_path / "templates.json")  # fmt: skip
    lines = _lines(6, 500)
    batch = stage.process(raw_batch([x.encode() for x in lines], source="t"))
    templates = batch.column("template").cast(pa.string()).to_pylist()
    _assert_valid(lines, [str(t) for t in templates])
    ids = batch.column("template_id").to_pylist()
    by_id: dict[int, str] = {}
    for cid, template in zip(ids, templates, strict=True):
        assert by_id.setdefault(int(cid), str(template)) == template  # one template an id
    for line, template, params in zip(lines, templates, batch.column("params").to_pylist(),
                                      strict=True):  # fmt: skip
        pieces = str(template).split(VAR)
        rebuilt = pieces[0] + "".join(p + q for p, q in zip(params, pieces[1:], strict=True))
        assert rebuilt == line
    stage.checkpoint()
    resumed = ParseStage.resume(tmp_path / "templates.json", llm_config=UNLIMITED,
                                llm_backend=GarbageBackend())  # fmt: skip
    again = resumed.process(raw_batch([x.encode() for x in lines], source="t"))
    assert again.column("template_id").to_pylist() == ids
    plain = ParseStage.resume(tmp_path / "templates.json")  # back to the statistical miner
    assert plain.process(raw_batch([lines[0].encode()], source="t")).num_rows == 1


def test_the_local_backend_is_the_probe_by_default_and_built_on_its_first_call() -> None:
    lazy = make_backend("local")  # the trained probe: measured to help, see the model card
    assert isinstance(lazy, LazyBackend) and not lazy.loaded  # loaded on the first call only
    scored = make_backend("local", local_margin=4.0)  # a margin selects the score mode
    assert isinstance(scored, LazyBackend) and not scored.loaded
    assert make_backend("local", local_margin=float("inf")) is None  # never adopt
    assert make_backend("local", local_mode="off") is None
    with pytest.raises(UsageError, match="needs a margin"):
        make_backend("local", local_mode="score")
    with pytest.raises(UsageError, match="unknown local mode"):
        make_backend("local", local_mode="beam")
    parser = LLMParser(make_backend("local", local_mode="off"))
    lines = _lines(7, 300)
    assert _parse(parser, lines)[0] == _parse(LLMParser(None), lines)[0]
    assert parser.stats.model_calls == 0


def test_lines_of_evicted_clusters_get_null_templates_and_ids() -> None:
    parser = LLMParser(GarbageBackend(), miner=TemplateMiner(MinerConfig(max_clusters=3)),
                       config=UNLIMITED)  # fmt: skip
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    text = pa.array([f"{w} {w} event {i}" for i, w in enumerate(words)])
    ids, templates = parser.resolve(parser.add_batch(text), text)
    assert ids.to_pylist()[:3] == [None, None, None]
    assert templates.to_pylist()[:3] == [None, None, None]
    assert templates.to_pylist()[3:] == [f"{w} {w} event <*>" for w in words[3:]]


def test_the_store_archives_a_garbage_model_batch_losslessly(tmp_path: Path) -> None:
    stage = ParseStage(LLMParser(GarbageBackend(), config=UNLIMITED))
    lines = [x.encode() for x in _lines(8, 400)]
    ts = pa.array([1_700_000_000_000_000_000 + i for i in range(len(lines))], pa.int64())
    parsed = stage.process(raw_batch(lines, source="t", labels='{app="a"}', ts=ts))
    templates = [str(t) for t in parsed.column("template").cast(pa.string()).to_pylist()]
    _assert_valid([x.decode() for x in lines], templates)
    store = Store(tmp_path, segment_bytes=4096)
    StoreSink(store).write(("t", 0), pa.Table.from_batches([parsed]), None)
    back = [x for b in store.read("fake", direction="forward") for x in b["line"].to_pylist()]
    assert back == lines
