"""The pieces of the hybrid parser: the answer checker, the parsing cache, the call budget,
the demonstrations and the diverse batch."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logpipe.models.llm_parser.demos import DemoPool, load_demonstrations

from logpipe.errors import StateError
from logpipe.parsing.budget import TokenBucket
from logpipe.parsing.cache import TemplateCache
from logpipe.parsing.llm import diverse_sample
from logpipe.parsing.llm_backends import Demonstration
from logpipe.parsing.template_check import (
    Verdict,
    check_template,
    clean_reply,
    keeps_constants,
    matches_all,
)

LINES = [
    "Failed password for root from 10.0.0.7 port 2201 ssh2",
    "Failed password for admin from 10.0.3.9 port 41 ssh2",
]
STAT = "Failed password for <*> from <*> port <*> ssh2"


# --------------------------------------------------------------------------- checker


def test_a_good_answer_is_accepted_in_loghub_conventions() -> None:
    result = check_template("Template: `Failed password for <*> from <*> port <*> ssh2`\n"
                            "Explanation: the user varies.", LINES, STAT)  # fmt: skip
    assert result.verdict is Verdict.ACCEPTED
    assert result.template == STAT


def test_an_answer_may_turn_a_constant_that_only_looked_constant_into_a_variable() -> None:
    lines = ["session opened for user root by (uid=0)"] * 2
    stat = "session opened for user root by (uid=<*>)"
    result = check_template("session opened for user <*> by (uid=<*>)", lines, stat)
    assert result.verdict is Verdict.ACCEPTED
    assert result.template == "session opened for user <*> by (uid=<*>)"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty"),
        ("<*>", "no constant text"),
        ("<*> <*> <*>", "no constant text"),
        ("Failed passwords for <*> from <*> port <*> ssh2", "does not match its lines"),
        ("Failed password for <*> from <*>", "swallows constant text"),
        ("Failed password for root from <*> port <*> ssh2", "does not match its lines"),
        ("Failed password for <*> from 10.0.0.7 port <*> ssh2", "does not match its lines"),
        ("Failed <*>", "drops the constant text"),
        ("Failed password \x07 for <*>", "control characters"),
        ("x" * 5000, "too long"),
    ],
)
def test_garbage_is_rejected_and_the_statistical_template_kept(reply: str, reason: str) -> None:
    result = check_template(reply, LINES, STAT)
    assert result.verdict is Verdict.REJECTED
    assert result.reason == reason
    assert result.template == STAT


def test_a_paraphrase_with_the_right_variables_is_snapped_to_the_constants() -> None:
    lines = ["session opened for user root by (uid=0)", "session opened for user root by (uid=1)"]
    stat = "session opened for user root by (uid=<*>)"
    # one word misspelt, but the variable decision is usable: keep it, restore the text
    result = check_template("sesion opened for user <*> by (uid=<*>)", lines, stat)
    assert result.verdict is Verdict.REPAIRED
    assert result.template == "session opened for user <*> by (uid=<*>)"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.printable + "<*>éß", max_size=80))
def test_whatever_the_reply_the_template_matches_every_line(reply: str) -> None:
    result = check_template(reply, LINES, STAT)
    assert matches_all(result.template, LINES)
    assert keeps_constants(result.template, STAT)


def test_clean_reply_takes_the_first_line_without_wrappers() -> None:
    assert clean_reply('\n  "Job <*>   done"  \nmore') == "Job <*> done"
    assert clean_reply("Output: Job <*><*> done") == "Job <*> done"


# --------------------------------------------------------------------------- cache


def test_the_same_text_is_one_entry_and_a_model_confirms_a_statistical_one() -> None:
    cache = TemplateCache()
    a = cache.add("open <*> ok", "statistical")
    assert cache.add("open <*> ok", "model") == a
    assert cache.entry(a).source == "model"
    assert cache.add("close <*>", "model") != a
    assert len(cache) == 2


def test_match_picks_the_most_specific_template_and_wildcards_span_tokens() -> None:
    cache = TemplateCache()
    general = cache.add("user <*> logged <*>", "model")
    specific = cache.add("user <*> logged in", "model")
    date = cache.add("backup finished at <*> after <*> s", "model")
    assert cache.match("user bob logged in") == specific
    assert cache.match("user bob logged out") == general
    assert cache.match("backup finished at Jul 27 14:41:57 after 12 s") == date
    assert cache.match("user bob") is None
    assert cache.match("something else entirely") is None


def test_match_handles_tokens_with_variables_inside() -> None:
    cache = TemplateCache()
    eid = cache.add("connect to host=<*> port=<*>", "model")
    assert cache.match("connect to host=db1 port=5432") == eid
    assert cache.match("connect to hostname=db1 port=5432") is None


def test_cache_state_round_trips_and_corrupt_state_is_refused() -> None:
    cache = TemplateCache()
    ids = [cache.add(t, "model") for t in ("a <*>", "b <*> c", "d")]
    again = TemplateCache.from_dict(cache.to_dict())
    assert [e.template for e in again.entries()] == ["a <*>", "b <*> c", "d"]
    assert again.match("b 1 c") == ids[1]
    assert again.add("new <*>", "model") == max(ids) + 1
    with pytest.raises(StateError):
        TemplateCache.from_dict({"entries": [[1, "x", "bogus-source", 0]], "next_id": 2})
    with pytest.raises(StateError):
        TemplateCache.from_dict({"entries": [[5, "x", "model", 0]], "next_id": 2})
    with pytest.raises(StateError):
        TemplateCache.from_dict({"next_id": 2})


# --------------------------------------------------------------------------- budget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.refused == 1
    clock.now = 0.5  # one token back
    assert bucket.take() and not bucket.take()
    clock.now = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_time_inside_a_call_does_not_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    assert bucket.take()
    clock.now = 10.0  # a slow call
    bucket.charge(10.0)
    assert bucket.take()  # the one token left before the call
    assert not bucket.take()


def test_a_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.take() for _ in range(1000))


# --------------------------------------------------------------------------- demos, batch


def test_every_shipped_demonstration_is_a_valid_template_of_its_line() -> None:
    demos = load_demonstrations()
    assert 20 <= len(demos) <= 40
    for demo in demos:
        assert matches_all(demo.template, [demo.line]), demo
        assert clean_reply(demo.template) == demo.template


def test_demonstrations_are_retrieved_by_similarity_nearest_last() -> None:
    pool = DemoPool([Demonstration("disk full on /dev/sda", "disk full on <*>"),
                     Demonstration("user bob logged in", "user <*> logged in"),
                     Demonstration("user eve logged out", "user <*> logged out")])  # fmt: skip
    picked = pool.select("user carol logged in from 10.0.0.1", 2)
    assert [d.template for d in picked][-1] == "user <*> logged in"
    assert "disk full on <*>" not in [d.template for d in picked]
    pool.add(Demonstration("user zed logged in", "user <*> logged in"))  # same template
    assert len(pool) == 3


def test_the_batch_is_diverse_distinct_and_deterministic() -> None:
    rng = random.Random(3)
    lines = ["job 1 done on node a"] * 20 + [f"job {rng.randint(0, 9)} done on node {c}"
                                             for c in "abcdefgh"]  # fmt: skip
    sample = diverse_sample(lines, 4)
    assert len(sample) == len(set(sample)) == 4
    assert sample[0] == lines[0]
    assert len({s.split()[-1] for s in sample}) >= 3  # different nodes, not 4 copies
    assert diverse_sample(lines, 4) == sample
    assert diverse_sample(["a", "a"], 5) == ["a"]
