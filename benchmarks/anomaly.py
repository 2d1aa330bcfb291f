"""Anomaly detection benchmark: GLAD beside PCA, IsolationForest and DeepLog, same windows.

Run ``python -m benchmarks.anomaly`` (``--quick`` for a smaller synthetic log and fewer
DeepLog epochs, ``--datasets hdfs,bgl,synthetic``, ``--detectors glad,pca,...``, ``--json``
for one JSON object of every figure as the last output line, ``--write-results`` to rewrite
this benchmark's section of ``benchmarks/RESULTS.md``).

Why it is built this way:

* **Same windows, same splits.** Each data set is parsed once (logpipe's own parser, final
  templates) and windowed once (:mod:`logpipe.detect.datasets`); every detector is fitted
  on the same normal training windows and scores the same validation and test windows.
* **One threshold rule** for every detector and data set
  (:func:`logpipe.detect.metrics.threshold_from_normal`: the highest normal validation
  score); AUPR is reported beside it because it needs no threshold at all.
* **Ratios against the best baseline** (by F1, and by AUPR) in the same run, so a figure
  never stands without its baseline.
* **Throughput**: ``score lines/s`` counts the events of the test windows over the time
  ``score()`` took; ``events lines/s`` is parsing into events and windows (frame, time, mine,
  resolve, group);
  ``end to end`` combines both (seconds per line added), which is what ``logpipe detect
  score`` pays per line on this machine.
* **GLAD** is found by importing ``logpipe.models.glad`` and taking its ``GladDetector``
  (built with no arguments, or ``quick=True`` under ``--quick`` when it accepts that);
  when it is not there yet, the run says so and reports the baselines.

HDFS and BGL need the shared data (``$LOGPIPE_SHARED_DATA`` or ``../shared/data``); without
it they are skipped with a message, and the synthetic set still runs.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from benchmarks.common import (
    LOGHUB_CITATION,
    RESULTS_MD,
    default_data_dir,
    fmt,
    fmt_rate,
    fmt_ratio,
    md_table,
    replace_section,
    rich_table,
    run_info,
    table_console,
)
from logpipe.detect import datasets
from logpipe.detect.baselines import DeepLogDetector, IsolationForestDetector, PCADetector
from logpipe.detect.datasets import Dataset
from logpipe.detect.metrics import Evaluation, evaluate, threshold_from_normal
from logpipe.detect.windows import Detector, Window
from logpipe.errors import InputError, LogpipeError

SECTION_BEGIN = "<!-- benchmark:anomaly:begin -->"
SECTION_END = "<!-- benchmark:anomaly:end -->"
BASELINES = ("PCA", "IsolationForest", "DeepLog")
GLAD = "GLAD"


@dataclass(frozen=True)
class DetectorRun:
    """One detector on one data set: its figures, or why it has none."""

    name: str
    device: str
    evaluation: Evaluation | None = None
    fit_secs: float = 0.0
    score_secs: float = 0.0
    scored_lines: int = 0
    error: str | None = None
    #: seconds spent embedding the test period's templates before scoring (GLAD): a
    #: pipeline embeds a template once, when it is mined, so this is not per-line cost
    warm_secs: float = 0.0

    @property
    def lines_per_s(self) -> float | None:
        return self.scored_lines / self.score_secs if self.score_secs > 0 else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "error": self.error}
        if self.evaluation is not None:
            out.update(self.evaluation.as_dict())
            out.update(
                fit_secs=round(self.fit_secs, 3),
                score_secs=round(self.score_secs, 4),
                scored_lines=self.scored_lines,
                score_lines_per_s=_round(self.lines_per_s),
                template_warm_secs=round(self.warm_secs, 3),
            )
        return out


@dataclass(frozen=True)
class DatasetRun:
    name: str
    data: Dataset | None
    runs: list[DetectorRun]
    skipped: str | None = None

    @property
    def events_lines_per_s(self) -> float | None:
        if self.data is None or self.data.parse_secs <= 0:
            return None
        return self.data.lines / self.data.parse_secs


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ------------------------------------------------------------------------------ detectors


def _glad(quick: bool) -> Detector | str:
    """GLAD's detector, or why it is not available."""
    try:
        module = importlib.import_module("logpipe.models.glad")
    except ImportError as exc:
        return f"logpipe.models.glad cannot be imported ({exc})"
    cls = getattr(module, "GladDetector", None)
    if cls is None:
        return "logpipe.models.glad has no GladDetector yet"
    accepts_quick = "quick" in inspect.signature(cls).parameters
    detector: Detector = cls(quick=True) if quick and accepts_quick else cls()
    return detector


def build_detectors(names: Sequence[str], quick: bool) -> tuple[list[Detector], str | None]:
    """The detectors asked for (by case-insensitive name), and why GLAD is missing, if so."""
    wanted = {n.casefold() for n in names}
    out: list[Detector] = []
    missing: str | None = None
    if GLAD.casefold() in wanted:
        glad = _glad(quick)
        if isinstance(glad, str):
            missing = glad
        else:
            out.append(glad)
    if "pca" in wanted:
        out.append(PCADetector())
    if "isolationforest" in wanted:
        out.append(IsolationForestDetector(seed=0))
    if "deeplog" in wanted:
        out.append(DeepLogDetector(seed=0, epochs=10 if quick else 30))
    return out, missing


def _lines(windows: Sequence[Window]) -> int:
    return sum(len(w.events) for w in windows)


def run_detector(detector: Detector, data: Dataset) -> DetectorRun:
    """Fit on the training windows, threshold on validation, evaluate on test."""
    device = str(getattr(detector, "device", "cpu"))
    split = data.split
    try:
        started = time.perf_counter()
        if "validation" in inspect.signature(detector.fit).parameters:
            # the detector may calibrate itself on the held-out normal windows (GLAD); every
            # detector still fits on exactly split.train, and the benchmark's threshold below
            # is the same rule for all
            detector.fit(split.train, validation=split.validation)  # type: ignore[call-arg]
        else:
            detector.fit(split.train)
        fit_secs = time.perf_counter() - started
        threshold = threshold_from_normal(detector.score(split.validation))
        warm = getattr(detector, "warm_templates", None)
        started = time.perf_counter()
        if warm is not None:
            warm([e.template for w in split.test for e in w.events])
        warm_secs = time.perf_counter() - started
        started = time.perf_counter()
        scores = detector.score(split.test)
        score_secs = time.perf_counter() - started
    except LogpipeError as exc:
        return DetectorRun(detector.name, device, error=str(exc))
    evaluation = evaluate([w.label for w in split.test], np.asarray(scores), threshold)
    device = str(getattr(detector, "device", device))  # a detector may pick it in fit()
    return DetectorRun(
        detector.name,
        device,
        evaluation,
        fit_secs,
        score_secs,
        _lines(split.test),
        warm_secs=warm_secs,
    )


def run_dataset(
    name: str, data_dir: Path, detector_names: Sequence[str], quick: bool
) -> tuple[DatasetRun, str | None]:
    try:
        data = datasets.load(name, data_dir, quick=quick)
    except InputError as exc:
        return DatasetRun(name, None, [], skipped=str(exc)), None
    detectors, missing = build_detectors(detector_names, quick)
    return DatasetRun(name, data, [run_detector(d, data) for d in detectors]), missing


# ------------------------------------------------------------------------------ reporting


def _best(runs: Sequence[DetectorRun], key: str) -> float | None:
    values = [
        getattr(r.evaluation, key) for r in runs if r.name in BASELINES and r.evaluation is not None
    ]
    return max(values) if values else None


def _ratio(value: float, best: float | None) -> float | None:
    return value / best if best else None


def _end_to_end(events_rate: float | None, score_rate: float | None) -> float | None:
    if not events_rate or not score_rate:
        return None
    return 1.0 / (1.0 / events_rate + 1.0 / score_rate)


HEADER = [
    "data set",
    "detector",
    "P",
    "R",
    "F1",
    "AUPR",
    "F1 / best baseline",
    "AUPR / best baseline",
    "train s",
    "score lines/s",
    "end to end lines/s",
    "device",
]


def table_rows(result: DatasetRun) -> list[list[str]]:
    rows: list[list[str]] = []
    best_f1, best_aupr = _best(result.runs, "f1"), _best(result.runs, "aupr")
    for run in result.runs:
        first = result.name if not rows else ""
        ev = run.evaluation
        if ev is None:
            rows.append([first, run.name, *(["n/a"] * 9), f"error: {run.error}"])
            continue
        rows.append(
            [
                first,
                run.name,
                fmt(ev.precision),
                fmt(ev.recall),
                fmt(ev.f1),
                fmt(ev.aupr),
                fmt_ratio(_ratio(ev.f1, best_f1)),
                fmt_ratio(_ratio(ev.aupr, best_aupr)),
                fmt(run.fit_secs, 2),
                fmt_rate(run.lines_per_s),
                fmt_rate(_end_to_end(result.events_lines_per_s, run.lines_per_s)),
                run.device,
            ]
        )
    return rows


def dataset_json(result: DatasetRun) -> dict[str, Any]:
    if result.data is None:
        return {"skipped": result.skipped}
    data = result.data
    best_f1, best_aupr = _best(result.runs, "f1"), _best(result.runs, "aupr")
    detectors = {}
    for run in result.runs:
        entry = run.as_json()
        if run.evaluation is not None:
            entry["f1_vs_best_baseline"] = _round3(_ratio(run.evaluation.f1, best_f1))
            entry["aupr_vs_best_baseline"] = _round3(_ratio(run.evaluation.aupr, best_aupr))
            entry["end_to_end_lines_per_s"] = _round(
                _end_to_end(result.events_lines_per_s, run.lines_per_s)
            )
        detectors[run.name] = entry
    split = data.split
    return {
        "lines": data.lines,
        "events": len(data.templates),
        "windows": len(data.windows),
        "anomalous_windows": sum(1 for w in data.windows if w.label == 1),
        "train": len(split.train),
        "validation": len(split.validation),
        "test": len(split.test),
        "test_anomalous": sum(1 for w in split.test if w.label == 1),
        "random_aupr": round(_base_rate(data), 4),
        "train_anomalous_left_out": split.train_anomalous,
        "purged": split.purged,
        "counts": data.counts,
        "events_lines_per_s": _round(result.events_lines_per_s),
        "best_baseline_f1": best_f1,
        "best_baseline_aupr": best_aupr,
        "detectors": detectors,
    }


def _base_rate(data: Dataset) -> float:
    """The share of anomalous test windows: the AUPR a random ranking gets."""
    test = data.split.test
    return sum(1 for w in test if w.label == 1) / len(test) if test else 0.0


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _section(results: Sequence[DatasetRun], missing: str | None, info_line: str) -> str:
    rows = [row for r in results if r.data is not None for row in table_rows(r)]
    notes = [
        f"- {r.data.describe()}; AUPR of a random ranking: {_base_rate(r.data):.3f}"
        for r in results
        if r.data is not None
    ]
    notes += [f"- {r.name}: skipped ({r.skipped})" for r in results if r.data is None]
    notes += [
        f"- {r.name}, {run.name}: embedding the test period's templates before scoring took "
        f"{run.warm_secs:.2f} s (once per new template; not in `score lines/s`)"
        for r in results
        for run in r.runs
        if run.warm_secs >= 0.01
    ]
    glad = f"GLAD: not measured ({missing})." if missing else ""
    return "\n".join([
        SECTION_BEGIN,
        "## Anomaly detection: GLAD beside PCA, IsolationForest and DeepLog",
        "",
        info_line,
        "",
        "Every detector is fitted on the same normal training windows and thresholded by one "
        "rule (the highest score of a normal validation window; alert when strictly above), "
        "then scored on the same test windows. Windows, splits and the synthetic generator "
        "are described in `docs/DETECT.md`. `score lines/s` counts the events of the test "
        "windows over the time `score()` took; `end to end` adds parsing the data set into "
        "events and windows (per line). What the HDFS_20000 slice can show is in "
        "`docs/DETECT.md` section 4: its 24 anomalous test blocks all have the event "
        "sequence of some normal block. "
        + glad,
        "",
        md_table(HEADER, rows),
        "",
        *notes,
        "",
        f"HDFS and BGL come from Loghub: {LOGHUB_CITATION}",
        "",
        SECTION_END,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anomaly", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller synthetic log, fewer epochs")
    parser.add_argument("--datasets", default=",".join(datasets.DATASETS))
    parser.add_argument(
        "--detectors", default=",".join((GLAD, *BASELINES)), help="comma-separated names"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="rewrite this benchmark's section of benchmarks/RESULTS.md",
    )
    args = parser.parse_args(argv)
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in datasets.DATASETS]
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; known: {datasets.DATASETS}")
    detector_names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    known = {n.casefold() for n in (GLAD, *BASELINES)}
    if bad := [n for n in detector_names if n.casefold() not in known]:
        parser.error(f"unknown detector(s) {', '.join(bad)}; known: {GLAD}, {BASELINES}")
    data_dir = args.data_dir or default_data_dir()
    info = run_info(
        args.quick,
        {"torch": torch.__version__.split("+")[0], "scikit-learn": sklearn.__version__},
    )
    load = os.getloadavg()[0]
    results: list[DatasetRun] = []
    missing: str | None = None
    for name in names:
        result, why = run_dataset(name, data_dir, detector_names, args.quick)
        missing = missing or why
        results.append(result)
        if result.data is None:
            print(f"skipped {name}: {result.skipped}")
        else:
            print(f"{result.data.describe()}; random AUPR {_base_rate(result.data):.3f}")
    if missing:
        print(f"GLAD is missing: {missing}")
    rows = [row for r in results if r.data is not None for row in table_rows(r)]
    table_console().print(
        rich_table("Anomaly detection (test windows)", HEADER, rows, {"data set", "detector"})
    )
    info_line = (
        f"Produced by `python -m benchmarks.anomaly` on {info.date}, commit `{info.commit}`; "
        f"machine: {info.cpu}, {info.cores} cores (load average {load:.2f} at the start: the "
        f"machine is shared, so times are upper bounds); Python {info.python}, torch "
        f"{info.versions['torch']}, scikit-learn {info.versions['scikit-learn']}."
    )
    if args.write_results:
        replace_section(
            RESULTS_MD, _section(results, missing, info_line), SECTION_BEGIN, SECTION_END
        )
        print(f"wrote {RESULTS_MD}")
    if args.json:
        print(
            json.dumps(
                {
                    "run": {**info.as_json(), "load_average": round(load, 2)},
                    "glad_missing": missing,
                    "datasets": {r.name: dataset_json(r) for r in results},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
