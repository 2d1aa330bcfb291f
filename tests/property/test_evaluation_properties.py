"""The counter-based metrics agree with a literal, set-based reading of the definitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logpipe.evaluation import evaluate, f1

TEMPLATES = st.sampled_from(["a", "b", "c <*>", "d", "", "a "])


def _naive(truth: list[str | None], pred: list[str | None]) -> tuple[float, float, float, float]:
    """GA, PA, FGA, FTA straight from the definitions: sets of line numbers, no counters."""
    p = ["" if x is None else x for x in pred]
    scored = [i for i, t in enumerate(truth) if t is not None]
    truth_groups = {t: {i for i in scored if truth[i] == t} for t in {truth[i] for i in scored}}
    pred_groups = {k: {i for i in scored if p[i] == k} for k in {p[i] for i in scored}}
    correct = [t for t, lines in truth_groups.items() if lines in pred_groups.values()]
    ga = sum(len(truth_groups[t]) for t in correct) / len(scored)
    pa = sum(1 for t, x in zip(truth, p, strict=True) if t is not None and t == x) / len(truth)
    fga = f1(len(correct) / len(pred_groups), len(correct) / len(truth_groups))
    right = [k for k, lines in pred_groups.items() if {truth[i] for i in lines} == {k}]
    fta = f1(len(right) / len(pred_groups), len(right) / len(truth_groups))
    return ga, pa, fga, fta


@given(st.lists(st.tuples(st.one_of(st.none(), TEMPLATES), TEMPLATES), min_size=1, max_size=40))
def test_matches_definitions(pairs: list[tuple[str | None, str]]) -> None:
    truth = [t for t, _ in pairs]
    pred: list[str | None] = [p for _, p in pairs]
    if all(t is None for t in truth):
        return
    s = evaluate(truth, pred)
    assert (s.ga, s.pa, s.fga, s.fta) == _naive(truth, pred)
    for value in (s.ga, s.pa, s.fga, s.fta, s.fta_strict):
        assert 0.0 <= value <= 1.0
    assert s.fta_strict <= s.fta


@given(st.lists(TEMPLATES, min_size=1, max_size=40))
def test_perfect_prediction_scores_one(truth: list[str]) -> None:
    s = evaluate(truth, list(truth))
    assert (s.ga, s.pa, s.fga, s.fta, s.fta_strict) == (1.0, 1.0, 1.0, 1.0, 1.0)


@given(st.lists(st.tuples(TEMPLATES, st.integers(0, 5)), min_size=1, max_size=40))
def test_renaming_groups_keeps_grouping_scores(pairs: list[tuple[str, int]]) -> None:
    # GA and FGA depend only on the partition, not on the names of the predicted groups.
    truth = [t for t, _ in pairs]
    a = evaluate(truth, [f"x{k}" for _, k in pairs])
    b = evaluate(truth, [f"y{k * 7}" for _, k in pairs])
    c = evaluate(truth, [f"x{k}" for _, k in pairs], predicted_groups=[k for _, k in pairs])
    assert (a.ga, a.fga) == (b.ga, b.fga) == (c.ga, c.fga)
