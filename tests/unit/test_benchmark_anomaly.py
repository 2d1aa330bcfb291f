"""benchmarks/anomaly.py --quick on the synthetic set only (no shared data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import anomaly


def test_quick_synthetic_run_reports_every_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--quick", "--datasets", "synthetic,hdfs", "--data-dir", str(tmp_path)]
    argv += ["--detectors", "PCA,IsolationForest,DeepLog", "--json"]
    assert anomaly.main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped hdfs: " in out and "data file not found" in out  # no data in tmp_path
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["datasets"]["hdfs"]["skipped"]
    synthetic = figures["datasets"]["synthetic"]
    assert synthetic["windows"] == 600 and synthetic["anomalous_windows"] == 30
    assert synthetic["test"] + synthetic["validation"] + synthetic["train"] <= 600
    assert set(synthetic["detectors"]) == {"PCA", "IsolationForest", "DeepLog"}
    for name, result in synthetic["detectors"].items():
        assert result["error"] is None
        assert result["tp"] + result["fn"] == synthetic["test_anomalous"]
        assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == synthetic["test"]
        # relational anomalies: same sequences and counts as normal sessions, by construction
        assert result["f1"] < 0.6, name
        assert result["score_lines_per_s"] > 0 and result["device"] == "cpu"
    best = max(r["f1"] for r in synthetic["detectors"].values())
    assert synthetic["best_baseline_f1"] == best


def test_unknown_names_are_usage_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        anomaly.main(["--datasets", "nope"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        anomaly.main(["--detectors", "magic"])
    with pytest.raises(SystemExit):
        anomaly.main(["--quick", "--write-results"])
