"""Train the variable probe on labelled Loghub systems: ``make train-llm-probe``.

``python -m logpipe.models.llm_parser.train_probe --data-dir ../shared/data --out DIR``
reads every ``loghub-2k*/<Sys>/<Sys>_2k.log_structured_corrected.csv`` under the data
directory (by path; nothing is copied), parses each system's lines with the statistical
miner, labels the candidate tokens of its templates from the ground truth
(:func:`~logpipe.models.llm_parser.probe.truth_labels`), runs the base model once per
template for their features, and fits the head.

The decision threshold is chosen **leave-one-system-out over the training systems**:
for each system, a head fitted on the others rewrites that system's templates, and the
threshold with the best mean of GA, PA, FGA and FTA over the systems wins (ties go to the
higher, more cautious one). The benchmark calls the same functions with the scored system
left out of everything, so its figures are leave-one-system-out end to end.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from logpipe.models.llm_parser.probe import (
    DEFAULT_C,
    DEFAULT_LAYERS,
    PROBE_DIR,
    THRESHOLDS,
    VarProbe,
    apply_probe,
    fit_probe,
    piece_features,
    truth_labels,
)

from logpipe.datadir import shared_data_dir
from logpipe.evaluation import evaluate, read_labelled_lines
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.parsing.postprocess import loghub_postprocess

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "LabelledSystem",
    "ProbeRows",
    "choose_threshold",
    "collect",
    "find_labelled_systems",
    "main",
    "rewrite",
    "train",
]


@dataclass(frozen=True)
class LabelledSystem:
    """A system's lines and their true templates (line aligned)."""

    name: str
    contents: list[str]
    truth: list[str | None]


@dataclass
class ProbeRows:
    """One system's candidate tokens: features, (template, token index, label), and the
    per-line statistical templates and truth to score a rewrite with."""

    name: str
    features: np.ndarray
    rows: list[tuple[str, int, int]]  # label -1: not aligned, not used for fitting
    predicted: list[str]
    truth: list[str | None]

    def labelled(self) -> tuple[np.ndarray, np.ndarray]:
        y = np.array([r[2] for r in self.rows], np.int64)
        keep = y >= 0
        return self.features[keep], y[keep]


def find_labelled_systems(data_dir: Path, limit: int | None = None) -> list[LabelledSystem]:
    """Every Loghub 2k system under ``data_dir`` (``loghub-2k`` and ``loghub-2k-extra``)."""
    out: list[LabelledSystem] = []
    for path in sorted(data_dir.glob("loghub-2k*/*/*_2k.log_structured_corrected.csv")):
        contents, truth = read_labelled_lines(path, limit)
        out.append(LabelledSystem(path.parent.name, contents, truth))
    return out


def statistical_templates(contents: Sequence[str]) -> list[str]:
    """Each line's final template from a fresh statistical miner (default settings)."""
    miner = TemplateMiner(MinerConfig())
    text = pa.array(list(contents), pa.string())
    templates, _ = miner.line_templates(miner.add_batch(text), text)
    return [t or "" for t in templates.to_pylist()]


def collect(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    system: LabelledSystem,
    layers: Sequence[int] = DEFAULT_LAYERS,
) -> ProbeRows:
    """Parse ``system``, label its templates' candidate tokens and compute their features
    (one forward pass per distinct template)."""
    predicted = statistical_templates(system.contents)
    lines_of: dict[str, list[int]] = defaultdict(list)
    for i, template in enumerate(predicted):
        lines_of[template].append(i)
    rows: list[tuple[str, int, int]] = []
    blocks: list[np.ndarray] = []
    for template, lines in lines_of.items():
        truth = Counter(system.truth[i] for i in lines).most_common(1)[0][0] or ""
        labels = truth_labels(template, truth)
        indices, features = piece_features(model, tokenizer, template, layers)
        rows.extend((template, i, labels.get(i, -1)) for i in indices)
        blocks.append(features)
    width = 2 * len(layers) * int(model.config.hidden_size)
    features = np.concatenate(blocks) if blocks else np.zeros((0, width), np.float32)
    return ProbeRows(system.name, features, rows, predicted, system.truth)


def rewrite(system: ProbeRows, probabilities: np.ndarray, threshold: float) -> list[str]:
    """The system's per-line templates after the probe, as the parser would adopt them."""
    by_template: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for (template, index, _), p in zip(system.rows, probabilities, strict=True):
        by_template[template][0].append(index)
        by_template[template][1].append(float(p))
    new = {t: loghub_postprocess(apply_probe(t, idx, np.array(ps), threshold))
           for t, (idx, ps) in by_template.items()}  # fmt: skip
    return [new.get(t, t) for t in system.predicted]


def _mean_score(system: ProbeRows, predicted: list[str]) -> float:
    s = evaluate(system.truth, predicted)
    return (s.ga + s.pa + s.fga + s.fta) / 4


def _fit(systems: Sequence[ProbeRows], c: float, layers: Sequence[int]) -> VarProbe:
    pairs = [s.labelled() for s in systems]
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    return fit_probe(x, y, c=c, layers=layers)


def choose_threshold(
    systems: Sequence[ProbeRows],
    *,
    c: float = DEFAULT_C,
    thresholds: Sequence[float] = THRESHOLDS,
    layers: Sequence[int] = DEFAULT_LAYERS,
    progress: Callable[[str], None] | None = None,
) -> tuple[float, dict[float, float]]:
    """The threshold with the best mean score, each system scored by a head fitted on the
    others; and each threshold's mean gain over the statistical templates."""
    gains: dict[float, list[float]] = {t: [] for t in thresholds}
    for held in systems:
        if progress is not None:
            progress(f"threshold: {held.name} left out")
        head = _fit([s for s in systems if s is not held], c, layers)
        probs = head.probabilities(held.features)
        base = _mean_score(held, held.predicted)
        for t in thresholds:
            gains[t].append(_mean_score(held, rewrite(held, probs, t)) - base)
    means = {t: float(np.mean(v)) for t, v in gains.items()}
    best = max(means, key=lambda t: (means[t], t))
    return best, means


def train(
    systems: Sequence[ProbeRows],
    *,
    c: float = DEFAULT_C,
    layers: Sequence[int] = DEFAULT_LAYERS,
    progress: Callable[[str], None] | None = None,
) -> VarProbe:
    """Choose the threshold (leave-one-system-out), then fit on every given system."""
    threshold, gains = choose_threshold(systems, c=c, layers=layers, progress=progress)
    probe = _fit(systems, c, layers)
    probe.threshold = threshold
    n_pos = sum(int(r[2] == 1) for s in systems for r in s.rows)
    n_neg = sum(int(r[2] == 0) for s in systems for r in s.rows)
    probe.card = {
        "systems": [s.name for s in systems],
        "c": c,
        "candidates_variable": n_pos,
        "candidates_constant": n_neg,
        "threshold_gains": {str(t): round(g, 5) for t, g in gains.items()},
    }
    return probe


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """The command line: find the systems, collect features, train, save."""
    parser = argparse.ArgumentParser(
        prog="python -m logpipe.models.llm_parser.train_probe",
        description="Train the variable probe of `logpipe parse --parser llm` on the labelled "
        "Loghub 2k systems (features from the local SmolLM2-135M, a few minutes on a CPU).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=shared_data_dir(),
        help="directory holding loghub-2k/ (default: $LOGPIPE_SHARED_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROBE_DIR,
        help=f"where to write the head (default: {PROBE_DIR})",
    )
    parser.add_argument("--exclude", default="",
                        help="comma-separated systems to leave out of training")  # fmt: skip
    args = parser.parse_args(argv)
    excluded = {s for s in args.exclude.split(",") if s}
    systems = [s for s in find_labelled_systems(args.data_dir) if s.name not in excluded]
    if not systems:
        _log(f"error: no Loghub 2k system under {args.data_dir}/loghub-2k*")
        return 2
    from logpipe.models.nl2logql.loader import load_base_model  # noqa: PLC0415

    started = time.perf_counter()
    loaded = load_base_model()
    rows: list[ProbeRows] = []
    for i, system in enumerate(systems, 1):
        _log(f"[{i}/{len(systems)}] features: {system.name} ({len(system.contents)} lines)")
        rows.append(collect(loaded.model, loaded.tokenizer, system))
    probe = train(rows, progress=_log)
    probe.card["train_secs"] = round(time.perf_counter() - started, 1)
    probe.save(args.out)
    _log(f"wrote {args.out} (threshold {probe.threshold}, "
         f"{probe.card['candidates_variable']} variable / "
         f"{probe.card['candidates_constant']} constant tokens, "
         f"{probe.card['train_secs']} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
