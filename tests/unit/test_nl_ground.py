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


SSH_LINES = [
    b"reverse mapping checking getaddrinfo for a.example [1.2.3.4] failed - "
    b"POSSIBLE BREAK-IN ATTEMPT!",
    b"Address 5.6.7.8 maps to b.example, but this does not map back to the address - "
    b"POSSIBLE BREAK-IN ATTEMPT!",
    b"Failed password for invalid user bob from 1.2.3.4 port 22 ssh2",
    b"Failed password for invalid user eve from 5.6.7.8 port 22 ssh2",
    b"input_userauth_request: invalid user bob [preauth]",
]
SSH_TEMPLATES = [
    "reverse mapping checking getaddrinfo for <*> [<*>] failed - POSSIBLE BREAK-IN ATTEMPT!",
    "Address <*> maps to <*>, but this does not map back to the address - "
    "POSSIBLE BREAK-IN ATTEMPT!",
    "Failed password for invalid user <*> from <*> port <*> ssh2",
    "input_userauth_request: invalid user <*> [preauth]",
]


def ssh_grounder(tmp_path: Path) -> tuple[Engine, TemplateGrounder]:
    store = Store(tmp_path)
    store.ingest("fake", {"application": "ssh"}, [T0 + i * 10**9 for i in range(len(SSH_LINES))],
                 SSH_LINES)  # fmt: skip
    engine = Engine(store)
    probe = store_probe(engine, start_ns=T0 - 10**12, end_ns=T0 + 10**12, tenant="fake")
    return engine, TemplateGrounder(SSH_TEMPLATES, probe)


def test_a_live_filter_about_something_else_is_put_on_the_questions_words(tmp_path: Path) -> None:
    engine, g = ssh_grounder(tmp_path)
    query = 'sum(count_over_time({application="ssh"} |= "Failed password for invalid user" [1h]))'
    grounded, done = g.ground(parse_query(query), "How many possible break-in attempts were "
                              "detected in the last hour?")  # fmt: skip
    # the words of the question, as the log spells them: both templates that say it count
    assert format_query(grounded) == (
        'sum(count_over_time({application="ssh"} |= "POSSIBLE BREAK-IN ATTEMPT" [1h]))'
    )
    assert len(done) == 1 and "shares no word with the question" in done[0]
    result = engine.query_instant(format_query(grounded), time_ns=T0 + 10 * 10**9, tenant="fake")
    assert [s.value for s in result.samples] == [2.0]  # type: ignore[union-attr]


def test_a_filter_that_shares_a_word_with_the_question_is_kept(tmp_path: Path) -> None:
    _, g = ssh_grounder(tmp_path)
    expr = parse_query('{application="ssh"} |= "Failed password"')
    assert g.ground(expr, "which users failed to log in, and were there break-in attempts?") == (
        expr, [])  # fmt: skip
    # and nothing replaces it when no template says two of the question's words
    expr = parse_query('{application="ssh"} |= "invalid user"')
    assert g.ground(expr, "how many kernel panics?") == (expr, [])


def test_a_phrase_the_question_quotes_replaces_filters_unrelated_to_it(tmp_path: Path) -> None:
    _, g = ssh_grounder(tmp_path)
    query = '{application="ssh"} |= "input_userauth_request: invalid user" != "bob"'
    grounded, done = g.ground(parse_query(query), "List all 'Corrupted MAC on input' errors")
    # the user named the text: an empty answer is the true one when no line says it
    assert format_query(grounded) == '{application="ssh"} |= "Corrupted MAC on input" != "bob"'
    assert len(done) == 1 and "'Corrupted MAC on input'" in done[0]
    # a filter that already says most of the quoted phrase is the user's, kept as written
    expr = parse_query('{application="ssh"} |= "BREAK-IN ATTEMPT"')
    assert g.ground(expr, "count 'POSSIBLE BREAK-IN ATTEMPT' lines") == (expr, [])
    # a quoted single word is a value (a user, a host), not a phrase
    expr = parse_query('{application="ssh"} |= "Failed password"')
    assert g.ground(expr, "failures for user 'bob'") == (expr, [])


def test_a_dead_filter_with_the_users_own_words_or_no_close_template_is_kept(
    tmp_path: Path,
) -> None:
    g = grounder(hdfs_store(tmp_path))
    for query, question in [
        # a value the question names: nothing says it, so the true answer is empty
        ('{application="hdfs-eu"} |= "blk_999 allocateBlock"', "was blk_999 allocated?"),
        # text the question quotes, even a single word
        ('{application="hdfs-eu"} |= "allocateBlock: webmaster"',
         "blocks allocated by 'webmaster'?"),
        # real log text the sample lacks: the nearest template shares too little of it
        ('{application="hdfs-eu"} |~ "writeBlock .* received exception"',
         "which exceptions did writeBlock receive?"),
    ]:  # fmt: skip
        expr = parse_query(query)
        assert g.ground(expr, question) == (expr, []), query
