"""benchmarks/nl2logql.py on the shared data: one JSON object with every figure, in range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import nl2logql

pytestmark = pytest.mark.data


def test_quick_run_prints_scores_for_the_retrieval_baseline(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nl2logql.main(["--quick", "--json", "--data-dir", str(shared_data),
                          "--systems", "retrieval,tuned"]) == 0  # fmt: skip
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["dataset"]["usable"] + figures["dataset"]["rejected"] > 300
    retrieval = figures["systems"]["retrieval"]
    assert retrieval["n"] == nl2logql.QUICK_QUESTIONS
    assert retrieval["valid"] == 1.0  # it only ever returns (relabelled) gold queries
    for key in ("exact", "execution", "execution_nonempty"):
        assert 0.0 <= retrieval[key] <= 1.0
    assert retrieval["latency_median_s"] < 1.0
    assert "tuned" not in figures["systems"]  # no --adapter: a pending row


def test_unknown_systems_are_a_usage_error(shared_data: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        nl2logql.main(["--systems", "oracle", "--data-dir", str(shared_data)])
    assert exc.value.code == 2


def test_write_results_replaces_only_its_own_section(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n<!-- benchmark:parsing:begin -->\nkept\n"
                       "<!-- benchmark:parsing:end -->\n")  # fmt: skip
    monkeypatch.setattr(nl2logql, "RESULTS_MD", results)
    assert nl2logql.main(["--write-results", "--data-dir", str(shared_data)]) == 0
    text = results.read_text()
    assert "<!-- benchmark:parsing:begin -->\nkept\n" in text
    section = text[text.index(nl2logql.SECTION_BEGIN) : text.index(nl2logql.SECTION_END)]
    assert "| retrieval |" in section and "held-out" in section
    with pytest.raises(SystemExit):
        nl2logql.main(["--write-results", "--quick", "--data-dir", str(shared_data)])


def test_outcomes_file_has_one_scored_row_per_question_and_system(
    shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "outcomes.jsonl"
    assert nl2logql.main(["--quick", "--data-dir", str(shared_data), "--outcomes", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    systems = {r["system"] for r in rows}
    assert systems == {"retrieval", "retrieval, random-pair split (leaky)"}
    main_rows = [r for r in rows if r["system"] == "retrieval"]
    assert len(main_rows) == nl2logql.QUICK_QUESTIONS
    for r in main_rows:
        assert r["question"] and r["gold"]
        assert r["predicted"] is not None and r["valid"] is True
        assert r["executed"] in (True, False)
        assert isinstance(r["gold_has_data"], bool) and r["latency_s"] >= 0.0


def test_grounding_and_label_repair_leave_every_training_gold_query_as_it_is(
    shared_data: Path, tmp_path: Path
) -> None:
    """The repairs exist for a model's slips; a right query must pass through untouched,
    including those whose true answer on the sample is empty."""
    from logpipe.nl.ground import TemplateGrounder, store_probe
    from logpipe.nl.prompt import schema_from_store
    from logpipe.nl.repair import count_of_unset_groups, repair_labels

    setup = nl2logql.prepare(shared_data, tmp_path / "store")
    w = setup.window
    schema = schema_from_store(setup.built.store, w.tenant, templates=setup.templates)
    probe = store_probe(setup.engine, start_ns=w.start_ns, end_ns=w.end_ns, tenant=w.tenant)
    grounder = TemplateGrounder(schema.templates, probe)
    changed = [(p.query, done) for p in setup.split.train
               for _, done in [grounder.ground(p.expr, p.question)] if done]  # fmt: skip
    assert changed == []
    labels = schema.labels
    relabelled = [(p.query, done) for p in setup.split.train
                  for _, done in [repair_labels(p.expr, labels, p.question)] if done]  # fmt: skip
    assert relabelled == []
    regrouped = [p.query for p in setup.split.train
                 if count_of_unset_groups(p.expr, labels, p.question)[1]]  # fmt: skip
    assert regrouped == []
