"""Synthetic pairs: valid by construction, deterministic, executable, clear of held-out data;
and the evaluation store they run on."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from logpipe.logql import parse, parse_query
from logpipe.logql.engine import Engine
from logpipe.logql.results import Matrix, Streams
from logpipe.nl.data import Pair, Split
from logpipe.nl.evalstore import ANCHOR_NS, build_store, deployments
from logpipe.nl.normalise import normalise_query
from logpipe.nl.synth import dedupe, generate, slots_of
from tests.nlfakes import webshop_logs

HOUR = 3_600_000_000_000


def test_slots_are_named_typed_and_capture_their_values() -> None:
    logs = webshop_logs()
    failed = next(t for t in logs.templates if t.event_id == "E1")
    slots = {s.name: s for s in slots_of(failed)}
    assert set(slots) == {"user", "ip", "port"}
    assert (slots["user"].kind, slots["ip"].kind, slots["port"].kind) == ("text", "ip", "number")
    lines = [line for line, e in zip(logs.lines, logs.template_of_line, strict=True) if e == "E1"]
    for slot in slots.values():
        for sample, line in zip(failed.samples, lines, strict=False):
            m = re.search(slot.pattern, line)
            assert m is not None and m.group(slot.name) == sample[slot.index]


def test_pairs_are_valid_canonical_and_deterministic() -> None:
    logs = webshop_logs()
    pairs = generate([logs], seed=7, apps_per_template=2)
    assert pairs == generate([logs], seed=7, apps_per_template=2)
    assert pairs != generate([logs], seed=8, apps_per_template=2)
    for pair in pairs:
        assert pair.source == "synth" and pair.family == "webshop"
        assert normalise_query(pair.query) == pair.query  # canonical spelling
        assert parse_query(pair.query) == pair.expr
        app = re.search(r'application="([^"]+)"', pair.query)
        assert app is not None and app.group(1) in pair.question
    assert len({p.question for p in pairs}) == len(pairs)
    shapes = Counter(_shape(p.query) for p in pairs)
    assert {"count", "rate", "listing", "by_label", "topk", "distinct", "threshold", "unwrap",
            "numeric_filter"} <= set(shapes)  # fmt: skip


def _shape(query: str) -> str:
    for pattern, shape in ((r"^topk", "topk"), (r"^count\(", "distinct"), (r"\) > \d", "threshold"),
                           (r"unwrap", "unwrap"), (r"rate\(", "rate"), (r"^sum by", "by_label"),
                           (r"^\{.*\| \w+ [<>]=? ", "numeric_filter"),
                           (r"^sum\(count_over_time", "count"), (r"^\{", "listing")):  # fmt: skip
        if re.search(pattern, query):
            return shape
    return "other"


def test_app_names_can_be_given() -> None:
    pairs = generate([webshop_logs()], app_names={"webshop": ["shop-a"]}, apps_per_template=3)
    assert {re.search(r'application="([^"]+)"', p.query).group(1) for p in pairs} == {"shop-a"}  # type: ignore[union-attr]


def test_dedupe_drops_held_out_questions_queries_and_groups() -> None:
    pairs = generate([webshop_logs()], seed=1)
    held = pairs[0]
    # a held-out pair of another app with the same query shape (a template variant)
    other = held.query.replace(held.query.split('"')[1], "webshop-elsewhere")
    twin = Pair("A question nobody generated", other, parse(other), "webshop", 5)
    split = Split(train=[], heldout=[held, twin], heldout_groups=frozenset())
    kept = dedupe(pairs, split)
    assert held not in kept and len(kept) < len(pairs)
    assert all(p.query != held.query for p in kept)
    unrelated = Split(train=[], heldout=[Pair("x", '{a="b"}', parse('{a="b"}'), "x")],
                      heldout_groups=frozenset())  # fmt: skip
    assert dedupe(pairs, unrelated) == pairs


def test_evaluation_store_serves_every_synthetic_query(tmp_path: Path) -> None:
    logs = webshop_logs()
    pairs = generate([logs], seed=3, app_names={"webshop": ["webshop-eu", "webshop-us"]})
    sets = deployments([p.expr for p in pairs], {"webshop": logs})
    assert sets == {"webshop": [{"application": "webshop-eu"}, {"application": "webshop-us"}]}
    built = build_store(tmp_path / "store", {"webshop": logs}, sets)
    assert built.streams == 2 * 2 and built.lines == 2 * len(logs.lines)  # 2 apps x 2 levels
    assert built.end_ns == ANCHOR_NS + 1 and built.start_ns == ANCHOR_NS - 119 * 1_000_000_000
    engine = Engine(built.store)
    empty = []
    for pair in pairs:
        result = engine.query_range(pair.query, start_ns=built.end_ns - HOUR, end_ns=built.end_ns,
                                    step_ns=60_000_000_000, limit=1000)  # fmt: skip
        assert isinstance(result, Matrix | Streams)
        rows = result.series if isinstance(result, Matrix) else result.streams
        if not rows:
            empty.append(pair.query)
    # thresholds above what 120 lines hold may be empty; everything else finds its lines
    assert all(" > " in q for q in empty), empty


def test_deployment_labels_override_only_values_no_line_has() -> None:
    logs = webshop_logs(host="web1")
    queries = [parse('{application="webshop-a", hostname="web1"}'),
               parse('{application="webshop-a", hostname="edge-7"}'),
               parse('{application="webshop-b", log_level="WARN"}'),
               parse('{application="other-x"}')]  # fmt: skip
    assert deployments(queries, {"webshop": logs}) == {"webshop": [
        {"application": "webshop-a"},
        {"application": "webshop-a", "hostname": "edge-7"},
        {"application": "webshop-b"},
    ]}  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
def test_every_pair_names_its_needle_in_the_question(seed: int) -> None:
    for pair in generate([webshop_logs()], seed=seed):
        needle = re.search(r'\|= "([^"]+)"', pair.query)
        assert needle is not None and f"'{needle.group(1)}'" in pair.question
