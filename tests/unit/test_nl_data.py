"""NL2LogQL pairs: normalisation, rejection reports, and the grouped, stratified split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logpipe.errors import InputError, LogQLError
from logpipe.logql import parse
from logpipe.nl.data import (
    group_keys,
    mask_question,
    read_pairs,
    split_pairs,
)
from logpipe.nl.normalise import normalise_query, same_query

SYSTEM = "You are a LogQL assistant."


def _record(question: str, query: str) -> str:
    return json.dumps({"messages": [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": question},
                                    {"role": "assistant", "content": query}]})  # fmt: skip


def _dataset(tmp_path: Path, records: list[str]) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ normalisation
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ('{b="2", a="1"}', '{a="1", b="2"}'),
        ('{a="1", a="1"}', '{a="1"}'),
        ('{a="1"} | x="1", y="2"', '{a="1"} | x="1" and y="2"'),
        ('{a="1"} | x="1" y="2"', '{a="1"} | x="1" and y="2"'),
        ('sum(count_over_time({a="1"}[5m])) by (h)', 'sum by (h) (count_over_time({a="1"}[5m]))'),
        ("sum(\n  rate({a=`1`}  [1h] )\n)", 'sum(rate({a="1"}[1h]))'),
    ],
)
def test_equivalent_spellings_normalise_to_one(a: str, b: str) -> None:
    assert normalise_query(a) == normalise_query(b)
    assert same_query(parse(a), parse(b))


def test_normalisation_keeps_what_changes_meaning() -> None:
    assert normalise_query('{a="1"} |= "x" |= "y"') != normalise_query('{a="1"} |= "y"')
    assert not same_query(parse('{a="1"} | x="1" or y="2"'), parse('{a="1"} | x="1" and y="2"'))
    assert normalise_query('sum by (h) (count_over_time({a="1"}[5m]))') == (
        'sum by (h) (count_over_time({a="1"}[5m]))'
    )
    with pytest.raises(LogQLError):
        normalise_query('{a=~".*"}')  # parses, but Loki rejects it


# ------------------------------------------------------------------ reading
def test_pairs_are_normalised_and_rejections_reported(tmp_path: Path) -> None:
    path = _dataset(tmp_path, [
        _record("How many errors for shop-eu?", 'sum(count_over_time({level="error", '
                'application="shop-eu"}[1h]))'),
        _record("Broken one", '{application="shop-eu"} | regexp "a"b"'),
        "not json at all",
        _record("Bad template", '{application="shop-eu"} | line_format "{{.a | nope}}"'),
        "",
        json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),
    ])  # fmt: skip
    loaded = read_pairs(path)
    assert [p.query for p in loaded.pairs] == [
        'sum(count_over_time({application="shop-eu", level="error"}[1h]))'
    ]
    pair = loaded.pairs[0]
    assert (pair.family, pair.line, pair.source) == ("shop", 1, "nl2logql")
    kinds = [(r.line, r.kind) for r in loaded.rejected]
    assert kinds == [(2, "parse"), (3, "record"), (4, "validation"), (6, "record")]
    assert "line 1, col" in loaded.rejected[0].reason
    assert loaded.rejected[2].question == "Bad template"


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jsonl"):
        read_pairs(tmp_path / "missing.jsonl")


def test_family_falls_back_to_the_question(tmp_path: Path) -> None:
    path = _dataset(tmp_path, [
        _record("Errors for db-west?", 'count_over_time({application="db-west"}[1h])'),
        _record("Errors for db-east?", 'count_over_time({component="x"}[1h])'),
        _record("Something else", 'count_over_time({component="y"}[1h])'),
    ])  # fmt: skip
    assert [p.family for p in read_pairs(path).pairs] == ["db", "db", "other"]


# ------------------------------------------------------------------ grouping and split
def _variants(template: str, query: str, apps: list[str]) -> list[str]:
    return [_record(template.format(app=a), query.format(app=a)) for a in apps]


def _big_dataset(tmp_path: Path) -> Path:
    records: list[str] = []
    apps = {"web": ["web-eu", "web-us", "web-asia"], "db": ["db-1", "db-2"]}
    for family, names in apps.items():
        for i in range(12):
            records += _variants(f"How many events of kind {i} for {{app}} in the last hour?",
                                 f'sum(count_over_time({{{{application="{{app}}"}}}} |= "k{i}" '
                                 "[1h]))", names)  # fmt: skip
        # a paraphrase with the same query as kind 0: must share its group
        records += _variants("Count kind-0 lines of {app}, last hour",
                             '(sum(count_over_time({{application="{app}"}} |= "k0" [1h])))',
                             names[:1])  # fmt: skip
        _ = family
    return _dataset(tmp_path, records)


def test_masking_removes_label_values_and_family_names() -> None:
    expr = parse('{application="web-eu", hostname="h-7"} |= "x"')
    assert mask_question("Errors on web-eu (host h-7), or web-us?", expr, "web") == (
        "errors on <v> host <v> or <v>"
    )


def test_template_variants_and_paraphrases_share_a_group(tmp_path: Path) -> None:
    pairs = read_pairs(_big_dataset(tmp_path)).pairs
    keys = group_keys(pairs)
    by_filter: dict[tuple[str, str], set[str]] = {}
    for pair, key in zip(pairs, keys, strict=True):
        by_filter.setdefault((pair.family, pair.query.split("|=")[1]), set()).add(key)
    # each "kN" filter of a family (one template, all its apps, paraphrases too): one group
    assert all(len(groups) == 1 for groups in by_filter.values())
    assert len(set(keys)) == 24  # 12 templates x 2 families


def test_split_is_grouped_stratified_and_deterministic(tmp_path: Path) -> None:
    path = _big_dataset(tmp_path)
    pairs = read_pairs(path).pairs
    split = split_pairs(pairs, 0.25)
    keys = dict(zip(pairs, group_keys(pairs), strict=True))
    train_groups = {keys[p] for p in split.train}
    held_groups = {keys[p] for p in split.heldout}
    assert train_groups.isdisjoint(held_groups) and held_groups == split.heldout_groups
    assert len(split.train) + len(split.heldout) == len(pairs)
    for family in ("web", "db"):
        total = sum(p.family == family for p in pairs)
        held = sum(p.family == family for p in split.heldout)
        assert 0.25 * total <= held < 0.25 * total + 4  # whole groups: at most one over
    # the same split whatever the order of the file
    again = split_pairs(list(reversed(pairs)), 0.25)
    assert {p.line for p in again.heldout} == {p.line for p in split.heldout}
    assert split_pairs(pairs, 0.0).heldout == []
    with pytest.raises(ValueError, match="fraction"):
        split_pairs(pairs, 1.0)
