"""BM25 and the schema-aware prompt: relevant, deterministic, within budget."""

from __future__ import annotations

from pathlib import Path

from logpipe.nl.bm25 import BM25, tokenize
from logpipe.nl.prompt import (
    SYSTEM_PROMPT,
    Example,
    PromptBuilder,
    Schema,
    approx_tokens,
    rank_values,
    schema_from_store,
)
from logpipe.store import Store


def test_tokenize_splits_camel_case_and_drops_stop_words() -> None:
    assert tokenize("How many allocateBlock calls for HDFS-eu?") == [
        "many", "allocateblock", "allocate", "block", "calls", "hdfs", "eu",
    ]  # fmt: skip


def test_bm25_ranks_by_shared_rare_words_and_breaks_ties_by_position() -> None:
    docs = [tokenize(t) for t in ("failed password for root", "connection closed",
                                  "failed password for admin", "session opened")]  # fmt: skip
    index = BM25(docs)
    top = index.top(tokenize("failed password admin"), 3)
    assert [i for i, _ in top] == [2, 0]  # "admin" is rare; nothing else shares a word
    assert index.top(tokenize("password"), 2) == [(0, top[1][1] * 0 + index.scores(
        tokenize("password"))[0]), (2, index.scores(tokenize("password"))[2])]  # fmt: skip
    assert index.top(tokenize("nothing in common"), 5) == []
    assert BM25([]).top(["x"], 3) == []


def test_values_named_by_the_question_come_first() -> None:
    values = ["hdfs-eu", "openssh-us-east", "openssh", "openssh-eu-west", "zz"]
    ranked = rank_values("failed logins on openssh-eu-west last hour", values, 3)
    assert ranked[0] == "openssh-eu-west"  # named (and longest)
    assert "openssh" in ranked[:2]  # named too (inside the longer one)
    assert len(ranked) == 3
    assert rank_values("nothing", values, 10) == values  # nothing relevant: store order


EXAMPLES = [
    Example("How many failed password attempts for openssh-us-east?",
            'sum(count_over_time({application="openssh-us-east"} |= "Failed password" [1h]))',
            "g1"),
    Example("How many failed password attempts for openssh-eu-west?",
            'sum(count_over_time({application="openssh-eu-west"} |= "Failed password" [1h]))',
            "g1"),
    Example("Which blocks were deleted on hdfs-eu?",
            '{application="hdfs-eu"} |= "Deleting block"', "g2"),
    Example("Rate of session opened events for openssh-us-east",
            'sum(rate({application="openssh-us-east"} |= "session opened" [5m]))', "g3"),
]  # fmt: skip
SCHEMA = Schema(
    labels={"application": ["hdfs-eu", "openssh-eu-west", "openssh-us-east"],
            "hostname": ["LabSZ", "node7"], "component": ["dfs.DataNode", "sshd"]},
    templates=["Failed password for <*> from <*> port <*> ssh2", "Deleting block <*> file <*>",
               "session opened for user <*>"],
    streams=[{"application": "openssh-us-east", "hostname": "LabSZ", "component": "sshd"},
             {"application": "openssh-eu-west", "hostname": "LabSZ", "component": "sshd"},
             {"application": "hdfs-eu", "hostname": "node7", "component": "dfs.DataNode"}],
)  # fmt: skip


def test_prompt_holds_schema_templates_and_one_example_per_group() -> None:
    builder = PromptBuilder(EXAMPLES, shots=3)
    prompt = builder.build("How many failed password attempts for  openssh-eu-west today?",
                           SCHEMA)  # fmt: skip
    assert prompt.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = prompt.messages[1]["content"]
    assert user.endswith("Q: How many failed password attempts for openssh-eu-west today?\nA:")
    # the named application's streams decide the other labels' values
    assert prompt.labels["hostname"] == ["LabSZ"] and prompt.labels["component"] == ["sshd"]
    assert prompt.labels["application"][0] == "openssh-eu-west"
    assert prompt.templates[0] == "Failed password for <*> from <*> port <*> ssh2"
    groups = [e.group for e in prompt.examples]
    assert groups[0] == "g1" and len(groups) == len(set(groups))
    assert prompt.tokens == sum(approx_tokens(m["content"]) for m in prompt.messages)
    assert builder.build("How many failed password attempts for openssh-eu-west today?",
                         SCHEMA).messages == prompt.messages  # deterministic  # fmt: skip


def test_a_question_never_sees_itself_or_its_own_group() -> None:
    builder = PromptBuilder(EXAMPLES, shots=4)
    question = EXAMPLES[0].question
    shown = builder.build(question, SCHEMA, exclude_group="g1").examples
    assert all(e.group != "g1" for e in shown)
    assert all(e.question != question for e in builder.build(question, SCHEMA).examples)


def test_the_budget_drops_examples_then_templates_then_values() -> None:
    question = "How many failed password attempts for openssh-us-east?"
    full = PromptBuilder(EXAMPLES, shots=3, max_tokens=10_000).build(question, SCHEMA)
    assert len(full.examples) == 2 and full.templates  # the hdfs example shares no word
    smaller = PromptBuilder(EXAMPLES, shots=3, max_tokens=full.tokens - 1).build(question, SCHEMA)
    assert len(smaller.examples) == 1 and smaller.templates == full.templates
    assert smaller.tokens <= full.tokens - 1
    tiny = PromptBuilder(EXAMPLES, shots=3, max_tokens=1).build(question, SCHEMA)
    assert tiny.examples == [] and tiny.templates == []
    assert all(len(v) == 1 for v in tiny.labels.values())
    assert tiny.labels["application"] == ["openssh-us-east"]  # the named value is kept


def test_schema_from_store(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.ingest("fake", {"application": "web-1", "level": "info"}, [10**18], [b"a"])
    store.ingest("fake", {"application": "db-1"}, [10**18 + 5], [b"b"])
    schema = schema_from_store(store, "fake", templates=["x <*>"])
    assert schema.labels == {"application": ["db-1", "web-1"], "level": ["info"]}
    assert len(schema.streams) == 2 and schema.templates == ("x <*>",)
    assert schema.focus("errors of db-1") == {"application": ["db-1", "web-1"]}
