"""Grounding line filters that match nothing in the store on the store's own text."""

from __future__ import annotations

from pathlib import Path

from logpipe.logql import format_query, parse_query
from logpipe.logql.engine import Engine
from logpipe.nl.answer import answer, validate_candidate
from logpipe.nl.ground import TemplateGrounder, constant_segments, store_probe
from logpipe.nl.prompt import Prompt
from logpipe.store import Store

T0 = 1_700_000_000_000_000_000
LINES = [
    b"BLOCK* NameSystem.allocateBlock: /user/root/part-0001 blk_-123",
    b"BLOCK* NameSystem.allocateBlock: /user/root/part-0002 blk_456",
    b"Receiving block blk_456 src: /10.0.0.1:5000 dest: /10.0.0.2:50010",
    b"PacketResponder 1 for block blk_456 terminating",
]
TEMPLATES = [
    "BLOCK* NameSystem.allocateBlock: <*> <*>",
    "Receiving block <*> src: <*> dest: <*>",
    "PacketResponder <*> for block <*> terminating",
]


def hdfs_store(tmp_path: Path) -> Engine:
    store = Store(tmp_path)
    ts = [T0 + i * 10**9 for i in range(len(LINES))]
    store.ingest("fake", {"application": "hdfs-eu"}, ts, LINES)
    store.ingest("fake", {"application": "ssh"}, [T0], [b"Accepted password for root"])
    return Engine(store)


def grounder(engine: Engine) -> TemplateGrounder:
    probe = store_probe(engine, start_ns=T0 - 10**12, end_ns=T0 + 10**12, tenant="fake")
    return TemplateGrounder(TEMPLATES, probe)


def test_constant_segments_are_the_text_between_wildcards_longest_first() -> None:
    assert constant_segments("Receiving block <*> src: <*> dest: <*>") == [
        "Receiving block", "dest"]  # fmt: skip
    assert constant_segments("BLOCK* NameSystem.allocateBlock: <*> <*>") == [
        "BLOCK* NameSystem.allocateBlock"]  # fmt: skip
    assert constant_segments("<*> <*>") == []


def test_a_paraphrased_filter_is_put_on_the_nearest_template_that_matches(tmp_path: Path) -> None:
    engine = hdfs_store(tmp_path)
    query = 'sum(count_over_time({application="hdfs-eu"} |= "allocate new blocks" [1h]))'
    grounded, done = grounder(engine).ground(parse_query(query), "how many new blocks "
                                             "did the NameSystem allocate?")  # fmt: skip
    assert format_query(grounded) == (
        'sum(count_over_time({application="hdfs-eu"} |= "BLOCK* NameSystem.allocateBlock" '
        "[1h]))")  # fmt: skip
    assert len(done) == 1 and '"allocate new blocks"' in done[0]
    result = engine.query_instant(format_query(grounded), time_ns=T0 + 10 * 10**9,
                                  tenant="fake")  # fmt: skip
    assert [s.value for s in result.samples] == [2.0]  # type: ignore[union-attr]


def test_filters_that_match_and_negative_filters_are_left_alone(tmp_path: Path) -> None:
    g = grounder(hdfs_store(tmp_path))
    for query in ('{application="hdfs-eu"} |= "terminating" |~ "blk_[0-9]+"',
                  '{application="hdfs-eu"} != "no such words"',
                  '{application="hdfs-eu"} !~ "nothing.*here"'):  # fmt: skip
        expr = parse_query(query)
        grounded, done = g.ground(expr, "packet responders terminating")
        assert done == [] and grounded == expr


def test_no_template_that_matches_those_streams_means_no_change(tmp_path: Path) -> None:
    # the ssh stream holds none of the HDFS templates' text: nothing to ground on
    expr = parse_query('{application="ssh"} |= "allocate new blocks"')
    grounded, done = grounder(hdfs_store(tmp_path)).ground(expr, "new blocks allocated?")
    assert done == [] and grounded == expr


def test_grounding_is_a_named_repair_of_the_answer_loop(tmp_path: Path) -> None:
    engine = hdfs_store(tmp_path)
    g = grounder(engine)
    candidate = validate_candidate('{application="hdfs-eu"} |= "packet responder stopped"',
                                   "which packet responders stopped?", ground=g.ground)  # fmt: skip
    assert candidate.query == '{application="hdfs-eu"} |= "PacketResponder"'
    assert any("grounded as" in r for r in candidate.repairs)

    class Model:
        def generate(self, prompt: Prompt, n: int) -> list[str]:
            return ['{application="hdfs-eu"} |= "receive block"'] * n

    got = answer("which blocks were received?", Prompt([]), Model(), n=2, ground=g.ground)
    assert got.query == '{application="hdfs-eu"} |= "Receiving block"'
    assert got.candidates[0].votes == 2
