"""Hand-computed cases for the Loghub-2.0 metrics; the arithmetic is written out in each test."""

from __future__ import annotations

import pytest

from logpipe.errors import EvaluationError
from logpipe.evaluation import ParsingScores, evaluate, f1


def _metrics(s: ParsingScores) -> tuple[float, float, float, float]:
    return (s.ga, s.pa, s.fga, s.fta)


def test_all_correct() -> None:
    truth = ["open <*>", "open <*>", "close", "open <*>"]
    s = evaluate(truth, list(truth))
    assert _metrics(s) == (1.0, 1.0, 1.0, 1.0)
    assert s.fta_strict == 1.0
    assert (s.n_lines, s.n_scored_lines, s.n_truth_groups, s.n_pred_groups) == (4, 4, 2, 2)
    assert (s.n_correct_groups, s.n_correct_templates, s.n_correctly_grouped_lines) == (2, 2, 4)


def test_one_group_split_in_two() -> None:
    # truth: T1 "send <*>" on lines 1-4, T2 "recv <*>" on lines 5-6.
    # predicted: T1 split into "send <*>" (1-2) and "send <*> now" (3-4); T2 exact.
    truth = ["send <*>"] * 4 + ["recv <*>"] * 2
    pred = ["send <*>"] * 2 + ["send <*> now"] * 2 + ["recv <*>"] * 2
    s = evaluate(truth, pred)
    # GA: only T2's 2 lines are correctly grouped -> 2/6.
    assert s.ga == pytest.approx(2 / 6)
    # PA: lines 1, 2, 5, 6 carry the exact text -> 4/6.
    assert s.pa == pytest.approx(4 / 6)
    # FGA: 1 correct group; PGA = 1/3 predicted groups, RGA = 1/2 truth groups;
    # F1 = 2 * (1/3 * 1/2) / (1/3 + 1/2) = (1/3) / (5/6) = 0.4.
    assert (s.n_pred_groups, s.n_truth_groups, s.n_correct_groups) == (3, 2, 1)
    assert s.fga == pytest.approx(0.4)
    # FTA as Loghub-2.0's code computes it: predicted group "send <*>" holds only T1 lines and
    # its text equals T1, so it counts although T1 is split; "recv <*>" counts too -> 2 correct.
    # PTA = 2/3, RTA = 2/2; F1 = 2 * (2/3) / (2/3 + 1) = (4/3) / (5/3) = 0.8.
    assert s.n_correct_templates == 2
    assert s.fta == pytest.approx(0.8)
    # Strict (paper wording): the split T1 does not count -> 1 correct; PTA 1/3, RTA 1/2 -> 0.4.
    assert s.n_correct_templates_strict == 1
    assert s.fta_strict == pytest.approx(0.4)


def test_two_groups_merged() -> None:
    # truth: "open <*>" x2, "close <*>" x3, "stop" x1; the parser merges the first two.
    truth = ["open <*>"] * 2 + ["close <*>"] * 3 + ["stop"]
    pred = ["<*> <*>"] * 5 + ["stop"]
    s = evaluate(truth, pred)
    # GA: neither merged truth group is correct; "stop" is -> 1/6.
    assert s.ga == pytest.approx(1 / 6)
    # PA: only the "stop" line is exact -> 1/6.
    assert s.pa == pytest.approx(1 / 6)
    # FGA: 1 correct of 2 predicted and 3 truth groups: F1(1/2, 1/3) = (1/3) / (5/6) = 0.4.
    assert s.fga == pytest.approx(0.4)
    # FTA: "<*> <*>" mixes two truth templates; "stop" is right -> F1(1/2, 1/3) = 0.4.
    assert s.fta == pytest.approx(0.4)
    assert s.fta_strict == pytest.approx(0.4)


def test_right_groups_wrong_text() -> None:
    # Grouping is perfect but no template text matches: GA = FGA = 1, PA = FTA = 0.
    truth = ["user <*> login"] * 3 + ["disk full"] * 2
    pred = ["user <*> <*>"] * 3 + ["disk <*>"] * 2
    s = evaluate(truth, pred)
    assert _metrics(s) == (1.0, 0.0, 1.0, 0.0)


def test_missing_truth_is_dropped_except_for_pa() -> None:
    # Line 2 has no truth template: it leaves GA/FGA/FTA but stays wrong in PA's denominator.
    truth = ["a", None, "b"]
    pred = ["a", "a", "c"]
    s = evaluate(truth, pred)
    assert (s.n_lines, s.n_scored_lines) == (3, 2)
    # Scored lines 1 and 3: predicted "a" holds line 1 only (line 2 dropped), "c" holds line 3,
    # so both truth groups are correctly grouped -> GA 2/2, FGA F1(2/2, 2/2) = 1.
    assert s.ga == 1.0
    assert s.fga == 1.0
    # PA: line 1 right, line 2 (no truth) wrong, line 3 "c" != "b" -> 1/3.
    assert s.pa == pytest.approx(1 / 3)
    # FTA: "a" is right, "c" is not -> F1(1/2, 1/2) = 0.5.
    assert s.fta == pytest.approx(0.5)


def test_missing_prediction_is_empty_template() -> None:
    # A missing predicted template is "" (pandas fillna("")): one group, right grouping, wrong text.
    s = evaluate(["a", "a"], [None, None])
    assert _metrics(s) == (1.0, 0.0, 1.0, 0.0)


def test_no_whitespace_normalisation() -> None:
    # The reference compares strings exactly: a doubled or trailing space is a different template.
    s = evaluate(["a <*> b", "c"], ["a  <*> b", "c "])
    assert s.pa == 0.0
    assert s.fta == 0.0
    assert s.ga == 1.0


def test_explicit_group_keys() -> None:
    # Cluster ids 1 and 2 both carry the right text for "a <*>", so that truth group is split.
    truth = ["a <*>", "a <*>", "b"]
    pred = ["a <*>", "a <*>", "b"]
    s = evaluate(truth, pred, predicted_groups=[1, 2, 3])
    # GA: only "b" is correctly grouped -> 1/3; FGA = F1(1/3, 1/2) = 0.4.
    assert s.ga == pytest.approx(1 / 3)
    assert s.fga == pytest.approx(0.4)
    # PA ignores groups -> 3/3.
    assert s.pa == 1.0
    # FTA: "a <*>" counts once (not per cluster) and "b" once -> 2 correct of 3 predicted groups
    # and 2 truth groups: F1(2/3, 1) = 0.8. Strict: only "b" -> F1(1/3, 1/2) = 0.4.
    assert s.n_correct_templates == 2
    assert s.fta == pytest.approx(0.8)
    assert s.fta_strict == pytest.approx(0.4)
    # Without the keys the two clusters are one template string, hence one correct group.
    assert _metrics(evaluate(truth, pred)) == (1.0, 1.0, 1.0, 1.0)


def test_group_with_mixed_predicted_text_is_not_a_correct_template() -> None:
    s = evaluate(["a", "a"], ["a", "a2"], predicted_groups=[7, 7])
    assert s.ga == 1.0  # one cluster, one truth group
    assert s.n_correct_templates == 0  # but its lines disagree on the template text
    assert s.pa == 0.5


def test_empty_input_raises() -> None:
    with pytest.raises(EvaluationError, match="no lines"):
        evaluate([], [])


def test_no_truth_template_raises() -> None:
    with pytest.raises(EvaluationError, match="none of the 2 lines"):
        evaluate([None, None], ["a", "b"])


def test_length_mismatch_raises() -> None:
    with pytest.raises(EvaluationError, match="3 ground-truth templates but 2 predicted"):
        evaluate(["a", "b", "c"], ["a", "b"])
    with pytest.raises(EvaluationError, match="group keys"):
        evaluate(["a"], ["a"], predicted_groups=[1, 2])


def test_f1() -> None:
    assert f1(0.0, 0.0) == 0.0
    assert f1(1.0, 1.0) == 1.0
    assert f1(0.5, 1.0) == pytest.approx(2 / 3)
