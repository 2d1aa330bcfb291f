"""The retrieval baseline and the scores (exact, execution, validity) on a tiny store."""

from __future__ import annotations

from pathlib import Path

from logpipe.logql import parse
from logpipe.logql.engine import Engine
from logpipe.logql.results import Matrix, Series, Stream, Streams
from logpipe.nl.baseline import RetrievalBaseline, mentioned_values
from logpipe.nl.data import Pair
from logpipe.nl.evalstore import build_store, deployments
from logpipe.nl.evaluate import Window, canonical_result, score
from logpipe.nl.synth import generate
from tests.nlfakes import webshop_logs


def _pair(question: str, query: str, family: str = "openssh") -> Pair:
    return Pair(question, query, parse(query), family, 1)


LABELS = {
    "application": ["openssh", "openssh-us-east", "openssh-eu-west", "hdfs-eu-west"],
    "hostname": ["LabSZ", "LabSZ-us-east", "LabSZ-eu-west"],
}
TRAIN = [
    _pair("How many failed logins for openssh-us-east in the last hour?",
          'sum(count_over_time({application="openssh-us-east", hostname="LabSZ-us-east"} '
          '|= "Failed password" [1h]))'),
    _pair("Which blocks were deleted for hdfs-eu-west?",
          '{application="hdfs-eu-west"} |= "Deleting block"', "hdfs"),
    _pair("How many sessions were opened for openssh-us-east?",
          'sum(count_over_time({application="openssh-us-east"} |= "session opened" [1h]))'),
]  # fmt: skip


def test_mentioned_values_take_the_longest_whole_match() -> None:
    assert mentioned_values("errors of openssh-eu-west on LabSZ", LABELS) == {
        "application": "openssh-eu-west", "hostname": "LabSZ"}  # fmt: skip
    assert mentioned_values("all openssh hosts", LABELS) == {"application": "openssh"}
    assert mentioned_values("nothing named", LABELS) == {}


def test_the_nearest_query_gets_the_new_labels() -> None:
    baseline = RetrievalBaseline(TRAIN)
    predicted = baseline.predict("How many failed logins for openssh-eu-west in the last hour?",
                                 LABELS)  # fmt: skip
    # the application is substituted, and the hostname derived from it moves along
    assert predicted == ('sum(count_over_time({application="openssh-eu-west", '
                         'hostname="LabSZ-eu-west"} |= "Failed password" [1h]))')  # fmt: skip
    # the family named by the question decides the pool searched
    assert baseline.predict("how many failed logins for hdfs-eu-west", LABELS) == (
        '{application="hdfs-eu-west"} |= "Deleting block"'
    )


def test_canonical_results_ignore_label_names_and_order() -> None:
    a = Matrix([Series({"ip": "1.2.3.4"}, [(1, 2.0)]), Series({"ip": "5.6.7.8"}, [(1, 1.0)])])
    b = Matrix([Series({"source": "5.6.7.8"}, [(1, 1.0)]),
                Series({"source": "1.2.3.4"}, [(1, 2.0)])])  # fmt: skip
    assert canonical_result(a) == canonical_result(b)
    c = Matrix([Series({"ip": "1.2.3.4"}, [(1, 2.0000001)])])
    assert canonical_result(a) != canonical_result(c)
    lines = Streams([Stream({"x": "1"}, [(5, "a"), (6, "b")])])
    split = Streams([Stream({"x": "1"}, [(5, "a")]), Stream({"x": "2"}, [(6, "b")])])
    assert canonical_result(lines) == canonical_result(split)


def test_scores_on_a_tiny_store(tmp_path: Path) -> None:
    logs = webshop_logs()
    pairs = generate([logs], seed=2, app_names={"webshop": ["webshop-a", "webshop-b"]})
    built = build_store(tmp_path, {"webshop": logs},
                        deployments([p.expr for p in pairs], {"webshop": logs}))  # fmt: skip
    window = Window(built.start_ns, built.end_ns, 60_000_000_000)
    engine = Engine(built.store)
    gold = pairs[:6]
    ticks = iter(range(100))
    perfect = score(engine, gold, {p.question: p.query for p in gold}.get, window,
                    clock=lambda: float(next(ticks)))  # fmt: skip
    assert perfect.exact == perfect.valid == perfect.execution == 1.0
    assert perfect.latency(0.5) == 1.0 and perfect.n == 6
    respelled = score(engine, gold[:1], lambda q: gold[0].query.replace("sum(", "sum (", 1),
                      window)  # fmt: skip
    assert respelled.exact == 1.0
    wrong = score(engine, gold, lambda q: "not logql", window)
    assert wrong.valid == wrong.exact == wrong.execution == 0.0
    assert all(o.error for o in wrong.outcomes)
    # same result, different query: execution match without exact match
    count = next(p for p in pairs if p.query.startswith("sum(count_over_time"))
    twin = count.query.replace("sum(count_over_time", "sum by () (count_over_time", 1)
    moved = score(engine, [count], lambda q: twin, window)
    assert moved.execution == 1.0 and moved.exact == 0.0
    assert moved.as_dict()["gold_nonempty"] == 1
