"""The validation/repair loop with a stub model: only valid queries run, repairs are named,
candidates with data win, and no valid candidate means "cannot answer"."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.logql import format_query, parse, parse_query
from logpipe.logql.engine import Engine
from logpipe.logql.results import Vector
from logpipe.nl.answer import ExecOutcome, answer, engine_executor, validate_candidate
from logpipe.nl.prompt import Prompt
from logpipe.nl.repair import (
    balance,
    count_of_unset_groups,
    drop_captureless_regexp,
    extract_query,
    fix_range_spelling,
    range_from_question,
    repair_labels,
    window_from_question,
)
from logpipe.store import Store

LABELS = {"application": ["openssh-us-east", "openssh-eu-west"], "hostname": ["LabSZ"]}
PROMPT = Prompt(messages=[{"role": "user", "content": "q"}])


class StubModel:
    """Replies with fixed texts, in order; records how many it was asked for."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.asked: list[int] = []

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        self.asked.append(n)
        return self.replies[:n]


# ------------------------------------------------------------------ text repairs
@pytest.mark.parametrize(
    ("raw", "query"),
    [
        ('```logql\n{a="b"} |= "x"\n```\nThis query finds...', '{a="b"} |= "x"'),
        ('A: sum(rate({a="b"}[5m]))\n\nQ: next question', 'sum(rate({a="b"}[5m]))'),
        ('LogQL: `{a="b"}`', '{a="b"}'),
        ('sum(\n  rate({a="b"}[5m])\n)', 'sum( rate({a="b"}[5m]) )'),
        ("", ""),
    ],
)
def test_the_query_is_cut_out_of_the_reply(raw: str, query: str) -> None:
    assert extract_query(raw) == query


def test_balance_closes_and_drops_brackets_outside_strings() -> None:
    assert balance('sum(count_over_time({a="b"} |= "x(" [5m]') == (
        'sum(count_over_time({a="b"} |= "x(" [5m]))'
    )
    assert balance('{a="b"}}') == '{a="b"}'
    assert balance('{a="b') == '{a="b"}'
    assert balance('{a="b"}') is None


def test_range_spelling_and_question_windows() -> None:
    assert fix_range_spelling('rate({a="b"}[1 hour])') == 'rate({a="b"}[1h])'
    assert fix_range_spelling('rate({a="b"}[30 mins])') == 'rate({a="b"}[30m])'
    assert fix_range_spelling('rate({a="b"}[5m])') is None
    assert range_from_question("errors in the last 6 hours?") == "6h"
    assert range_from_question("over the past week") == "1w"
    assert range_from_question("in the last hour") == "1h"
    assert range_from_question("no window at all") == "5m"
    # the window is the span the question looks back over, not a duration it mentions
    assert range_from_question("How many blocks took longer than 2 minutes to be received in "
                               "the past 24 hours?") == "24h"  # fmt: skip
    assert range_from_question("sessions shorter than 5 seconds") == "5s"  # the only span


@pytest.mark.parametrize(
    ("question", "query", "fixed"),
    [
        (
            "failures in the last 24 hours?",
            'sum(count_over_time({a="b"} |= "x" [5m]))',
            'sum(count_over_time({a="b"} |= "x" [24h]))',
        ),
        (
            "rate of errors over the past hour",
            'sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m]))',
            'sum(rate({a="b"}[1h])) / sum(rate({a="c"}[1h]))',
        ),
    ],
)
def test_the_window_the_question_names_replaces_the_models_range(
    question: str, query: str, fixed: str
) -> None:
    expr, done = window_from_question(parse_query(query), question)
    assert done == ["range from question"]
    assert expr == parse_query(fixed)


@pytest.mark.parametrize(
    ("question", "query"),
    [
        ("failures in the last 24 hours?", 'sum(count_over_time({a="b"} [24h]))'),  # agrees
        ("how many failures?", 'sum(count_over_time({a="b"} [5m]))'),  # no window named
        ("failures in the last hour", '{a="b"} |= "x"'),  # a log query has no range
        (
            "failures in the last hour",  # two ranges on purpose: not the model's slip
            'sum(rate({a="b"}[5m])) / sum(rate({a="b"}[1h]))',
        ),
    ],
)
def test_the_range_is_kept_when_there_is_nothing_to_align(question: str, query: str) -> None:
    expr = parse_query(query)
    assert window_from_question(expr, question) == (expr, [])


def test_a_candidate_gets_the_questions_window_as_a_named_repair() -> None:
    c = validate_candidate('sum(count_over_time({application="openssh-us-east"} [5m]))',
                           "how many lines in the last 6 hours?", LABELS)  # fmt: skip
    assert c.query == 'sum(count_over_time({application="openssh-us-east"}[6h]))'
    assert "range from question" in c.repairs


@pytest.mark.parametrize(
    ("raw", "repair", "query"),
    [
        ("{application='openssh-us-east'}", "single quotes", '{application="openssh-us-east"}'),
        ('{application=="openssh-us-east"}', "== in selector", '{application="openssh-us-east"}'),
        ('count_over_time({application="openssh-us-east"}[6 hours])', "range spelling",
         'count_over_time({application="openssh-us-east"}[6h])'),
        ('sum(count_over_time({application="openssh-us-east"} |= "x" [6h])',
         "balanced brackets and strings",
         'sum(count_over_time({application="openssh-us-east"} |= "x"[6h]))'),
        ('count_over_time({application="openssh-us-east"} |= "x")', "missing range",
         'count_over_time({application="openssh-us-east"} |= "x" [6h])'),
        ('sum(total_over_time({application="openssh-us-east"} | regexp "t=(?P<t>[0-9]+)" '
         '| unwrap t [6h]))', "function name",
         'sum(sum_over_time({application="openssh-us-east"} | regexp "t=(?P<t>[0-9]+)" '
         '| unwrap t [6h]))'),
        ('count(sum by (b) (count_over_time({application="openssh-us-east"} | regexp '
         '"block (?P<b>[0-9]+)" | unwrap b [6h])))', "unwrap in a counting function",
         'count(sum by (b) (count_over_time({application="openssh-us-east"} | regexp '
         '"block (?P<b>[0-9]+)" [6h])))'),
        ('sum by (u) (count_over_time({application="openssh-us-east"} | regexp '
         '"user (?P<u>[a-z]+) from (?P<u>[0-9.]+)" [6h]))', "repeated capture names",
         'sum by (u) (count_over_time({application="openssh-us-east"} | regexp '
         '"user (?P<u>[a-z]+) from (?P<u_2>[0-9.]+)" [6h]))'),
    ],
)  # fmt: skip
def test_each_text_repair_is_named_and_revalidated(raw: str, repair: str, query: str) -> None:
    candidate = validate_candidate(raw, "how many in the last 6 hours", LABELS)
    assert candidate.repairs == [repair]
    assert candidate.query is not None and parse_query(candidate.query) == parse_query(query)


def test_repairs_combine_when_one_is_not_enough() -> None:
    candidate = validate_candidate("sum(count_over_time({application='openssh-us-east'}[1 hour])",
                                   "q", LABELS)  # fmt: skip
    assert candidate.query == 'sum(count_over_time({application="openssh-us-east"}[1h]))'
    assert candidate.repairs == ["single quotes", "range spelling",
                                 "balanced brackets and strings"]  # fmt: skip


def test_label_names_and_values_move_to_known_ones() -> None:
    fixed, done = repair_labels(parse('{app="openssh-us-eat", host="labsz"} |= "x"'), LABELS)
    assert fixed == parse('{application="openssh-us-east", hostname="LabSZ"} |= "x"')
    assert done == ["label app -> application", 'application="openssh-us-eat" -> "openssh-us-east"',
                    "label host -> hostname", 'hostname="labsz" -> "LabSZ"']  # fmt: skip
    untouched = parse('{application=~"openssh.*", zone="far-away-value"}')
    assert repair_labels(untouched, LABELS) == (untouched, [])


def test_a_matcher_on_a_label_the_store_lacks_is_dropped_unless_the_question_names_it() -> None:
    expr = parse('{application="openssh-us-east", tenant_id="tenant-2"} |= "x"')
    fixed, done = repair_labels(expr, LABELS, "errors for app openssh-us-east-tenant-2?")
    assert fixed == parse('{application="openssh-us-east"} |= "x"')
    assert done == ['tenant_id="tenant-2" dropped: the store has no label tenant_id']
    # the user's own value: an empty answer is the true one
    assert repair_labels(expr, LABELS, "errors for tenant 'tenant-2'")[1] == []
    assert repair_labels(expr, LABELS, "errors where tenant_id is tenant-2")[1] == []
    # a selector is never emptied
    lone = parse('{tenant_id="tenant-2"}')
    assert repair_labels(lone, LABELS, "errors?") == (lone, [])


COUNTED = 'count_over_time({application="openssh-us-east"} |= "POSSIBLE BREAK-IN" [24h])'


def test_a_count_of_groups_by_a_label_nothing_sets_becomes_a_sum() -> None:
    expr = parse(f"count(sum by (break_in_attempt) ({COUNTED}))")
    fixed, done = count_of_unset_groups(expr, LABELS)
    assert fixed == parse(f"sum({COUNTED})")
    assert done == ["count(sum by (break_in_attempt)) -> sum: no stream or stage sets that label"]
    # through the loop: the repair is applied and named
    question = "how many break-in attempts in the last 24 hours?"
    candidate = validate_candidate(
        f"count(sum by (break_in_attempt) ({COUNTED}))", question, LABELS
    )
    assert candidate.query == format_query(parse(f"sum({COUNTED})"))
    assert done[0] in candidate.repairs


@pytest.mark.parametrize(
    "question",
    ["how many unique attackers tried?", "how many distinct sources in the last hour?",
     "how many different hosts?", "How many compute nodes are there in openstack-eu?"],
)  # fmt: skip
def test_a_question_asking_for_distinct_things_keeps_its_count(question: str) -> None:
    expr = parse(f"count(sum by (break_in_attempt) ({COUNTED}))")
    assert count_of_unset_groups(expr, LABELS, question) == (expr, [])
    assert count_of_unset_groups(expr, LABELS, "how many break-in attempts?")[1]


@pytest.mark.parametrize(
    "query",
    [
        # a stream label, a regexp group, a pattern capture, a label_format target
        f"count(sum by (hostname) ({COUNTED}))",
        'count(sum by (block) (count_over_time({application="hdfs"} '
        '| regexp "blk_(?P<block>[0-9]+)" [4h])))',
        'count(sum by (user) (count_over_time({application="x"} '
        '| pattern "for <user> from" [1h])))',
        'count(sum by (who) (count_over_time({application="x"} | label_format who=hostname [1h])))',
        # json and logfmt may set any key: not judged
        'count(sum by (user) (count_over_time({application="x"} | json [1h])))',
        'count(sum by (user) (count_over_time({application="x"} | logfmt [1h])))',
        # other shapes are someone else's business
        f"sum by (break_in_attempt) ({COUNTED})",
        f"count(max by (break_in_attempt) ({COUNTED}))",
        f"count(sum without (break_in_attempt) ({COUNTED}))",
    ],
)
def test_counts_of_groups_something_can_set_are_left_alone(query: str) -> None:
    expr = parse(query)
    assert count_of_unset_groups(expr, LABELS) == (expr, [])


def test_a_regexp_stage_that_names_no_capture_is_dropped() -> None:
    raw = ('sum(count_over_time({application="openssh-us-east"} |~ "Active base files: .*" '
           '| regexp "Active base files: .*" [1h]))')  # fmt: skip
    fixed = drop_captureless_regexp(raw)
    assert fixed is not None and "regexp" not in fixed
    candidate = validate_candidate(raw, "how many active base files?", LABELS)
    want = 'sum(count_over_time({application="openssh-us-east"} |~ "Active base files: .*" [1h]))'
    assert candidate.query == format_query(parse(want))
    assert candidate.repairs == ["regexp without a named capture"]
    # named captures (either spelling) stay, and so does text inside a string
    assert drop_captureless_regexp('{a="b"} | regexp "(?P<x>\\d+)"') is None
    assert drop_captureless_regexp('{a="b"} | regexp `(?<x>[0-9]+)`') is None
    assert drop_captureless_regexp('{a="b"} |= "| regexp \\"x\\""') is None


def test_unrepairable_output_is_rejected_with_the_parser_message() -> None:
    candidate = validate_candidate("SELECT * FROM logs WHERE level = 'error'", "q", LABELS)
    assert candidate.query is None and candidate.error is not None
    assert "parse error at line 1" in candidate.error
    assert (
        validate_candidate('{application=~".*"}', "q").error is not None
    )  # valid syntax, not a query
    for invented in ("3", "vector(1) * 2", "sum(vector(5))"):  # valid LogQL, reads no logs
        candidate = validate_candidate(invented, "how many failed logins?")
        assert candidate.query is None and candidate.error is not None
        assert "reads no logs" in candidate.error


# ------------------------------------------------------------------ the loop
def test_votes_decide_and_only_valid_queries_are_executed() -> None:
    q1 = 'sum(count_over_time({application="openssh-us-east"} |= "Failed" [1h]))'
    q2 = 'sum(count_over_time({application="openssh-eu-west"} |= "Failed" [1h]))'
    model = StubModel([q2, "garbage (", q1, q1.replace("sum(", "sum (")])
    executed: list[str] = []

    def execute(query: str) -> ExecOutcome:
        parse_query(query)  # raises if anything invalid were executed
        executed.append(query)
        return ExecOutcome(None, True)

    result = answer("how many failed?", PROMPT, model, n=4, labels=LABELS, execute=execute)
    assert model.asked == [4]
    assert result.status == "answered" and result.query == q1  # two votes beat one
    assert sorted(executed) == sorted([q1, q2])
    assert next(c.votes for c in result.candidates if c.query == q1) == 2
    assert result.explanation.startswith("Counts lines of {application=")


def test_a_candidate_with_data_beats_more_votes() -> None:
    empty = '{application="openssh-us-east"} |= "nothing"'
    full = '{application="openssh-us-east"} |= "Failed"'
    model = StubModel([empty, empty, full])
    result = answer("q", PROMPT, model, n=3, execute=lambda q: ExecOutcome(None, "Failed" in q))
    assert result.query == full


def test_nothing_valid_means_cannot_answer_with_the_closest_known_query() -> None:
    model = StubModel(["I do not know", "SELECT 1"])
    suggestion = 'sum(rate({application="openssh-us-east"}[5m]))'
    result = answer("q", PROMPT, model, n=2, fallback=lambda q: suggestion,
                    execute=lambda q: pytest.fail("nothing may run"))  # fmt: skip
    assert result.status == "cannot_answer" and result.query is None
    assert result.closest == suggestion
    assert all(c.error for c in result.candidates)
    assert answer("q", PROMPT, model, n=2).closest is None


def test_engine_executor_runs_metric_queries_instantly_and_reports_errors(tmp_path: Path) -> None:
    store = Store(tmp_path)
    t = 1_700_000_000_000_000_000
    store.ingest("fake", {"application": "web"}, [t, t + 10**9], [b"GET / 500", b"GET / 200"])
    run = engine_executor(Engine(store), start_ns=t - 10**12, end_ns=t + 2 * 10**9)
    outcome = run('sum(count_over_time({application="web"} |= "500" [1h]))')
    assert outcome.has_data and isinstance(outcome.result, Vector)
    assert outcome.result.samples[0].value == 1.0
    assert not run('{application="web"} |= "404"').has_data
    failing = run('sum by (x) (avg_over_time({application="web"} | regexp "(?P<x>GET)" '
                  "| unwrap x [1h]))")  # fmt: skip
    assert failing.error is not None and not failing.has_data


def test_an_unwrap_that_cannot_convert_every_line_drops_those_lines_as_a_named_repair(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    t = 1_700_000_000_000_000_000
    store.ingest("fake", {"application": "web"}, [t, t + 10**9, t + 2 * 10**9],
                 [b"GET / time: 0.5", b"GET / time: 1.5", b"GET / no time"])  # fmt: skip
    run = engine_executor(Engine(store), start_ns=t - 10**12, end_ns=t + 3 * 10**9)
    query = ('avg(avg_over_time({application="web"} |= "GET" | regexp "time: (?P<t>[0-9.]+)" '
             "| unwrap t [1h]))")  # fmt: skip
    assert run(query).error is not None  # Loki's SampleExtractionErr, as Loki reports it
    result = answer("average time?", PROMPT, StubModel([query]), n=1, execute=run)
    assert result.query == ('avg(avg_over_time({application="web"} |= "GET" | regexp '
                            '"time: (?P<t>[0-9.]+)" | unwrap t | __error__="" [1h]))')  # fmt: skip
    assert "drop lines the unwrap cannot convert" in result.candidates[0].repairs
    assert isinstance(result.result, Vector) and result.result.samples[0].value == 1.0
    # a query that runs is never touched
    fine = 'sum(count_over_time({application="web"} |= "GET" [1h]))'
    assert answer("how many?", PROMPT, StubModel([fine]), n=1, execute=run).query == fine
