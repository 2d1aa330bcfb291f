"""How confident must the local model be? The scoring margin, chosen leave-one-system-out.

The local backend turns a constant token of the statistical template into ``<*>`` when the
model prefers ``<*>`` there by more than ``margin`` nats. That one number decides how much
the model changes; choosing it on the systems it is scored on would be tuning on the test
set. So: every system is parsed once per margin of a grid (the model's preferences are
computed once per request and replayed for the other margins: one forward pass per
group, not one per margin), and system S is reported **at the margin that scores best on
the other 13 systems** (mean of GA, PA, FGA, FTA). The fixed-margin means are printed too;
``inf`` is the model never changing anything (the cache alone).

Run: ``python -m benchmarks.parsing_llm_margin [--systems A,B] [--margins 0,1,2,4,inf]
[--record FILE]``; the last output line is one JSON object. With ``--record``, each
system's scores are appended to FILE as it finishes, and systems already in FILE are not
run again (a long run can be resumed, or summarised with ``--systems none``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks.common import default_data_dir
from benchmarks.parsing import CORE_SET, METRICS, find_systems
from benchmarks.parsing_llm import loso_demonstrations
from logpipe.evaluation import evaluate
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import ParseRequest
from logpipe.parsing.masking import VAR

__all__ = ["ReplayBackend", "loso_choice", "main"]


class ReplayBackend:
    """Scores with the local model once per (lines, statistical template) and replays the
    preferences for every margin (demonstrations differ slightly between margins' runs;
    the first computation is kept)."""

    name = "local-replay"

    def __init__(self, local: Any) -> None:
        self.local = local
        self.margin = 0.0
        self.memo: dict[tuple[tuple[str, ...], str], list[float | None]] = {}
        self.forward_passes = 0
        self.model_secs = 0.0

    def propose(self, request: ParseRequest) -> str:
        key = (request.lines, request.statistical)
        prefs = self.memo.get(key)
        if prefs is None:
            started = time.perf_counter()
            prefs = self.memo[key] = self.local.preferences(request)
            self.model_secs += time.perf_counter() - started
            self.forward_passes += 1
        pieces = request.statistical.split()
        return " ".join(VAR if p is not None and p > self.margin else piece
                        for piece, p in zip(pieces, prefs, strict=True))  # fmt: skip


def _mean4(scores: dict[str, float]) -> float:
    return sum(scores[m] for m in METRICS) / len(METRICS)


def loso_choice(table: dict[str, dict[float, dict[str, float]]], system: str) -> float:
    """The margin with the best mean score over every system but ``system`` (ties: the
    larger margin, i.e. the more conservative one)."""
    margins = sorted(next(iter(table.values())))
    others = [s for s in table if s != system]

    def score(m: float) -> tuple[float, float]:
        return (sum(_mean4(table[s][m]) for s in others) / max(len(others), 1), m)

    return max(margins, key=score)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parsing_llm_margin",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--systems", default=None, help="Comma-separated (default: the 14).")
    parser.add_argument("--margins", default="0,1,2,3,5,inf")
    parser.add_argument("--record", type=Path, default=None, help="JSON lines, resumable.")
    args = parser.parse_args(argv)
    data_dir = (args.data or default_data_dir()).resolve()
    margins = [math.inf if m == "inf" else float(m) for m in args.margins.split(",")]
    names = args.systems.split(",") if args.systems else None
    found = {s.name: s for s in find_systems(data_dir, names) if s.dataset == CORE_SET}
    systems = [found[n] for n in (names or sorted(found)) if n in found]
    table: dict[str, dict[float, dict[str, float]]] = {}
    calls: dict[str, dict[float, int]] = {}
    if args.record is not None and args.record.is_file():
        for raw in args.record.read_text(encoding="utf-8").splitlines():
            item = json.loads(raw)
            table[item["system"]] = {float(m): v for m, v in item["scores"].items()}
            calls[item["system"]] = {float(m): v for m, v in item["calls"].items()}
    systems = [s for s in systems if s.name not in table]
    from logpipe.models.llm_parser.demos import load_demonstrations
    from logpipe.models.llm_parser.local import LocalBackend

    replay = ReplayBackend(LocalBackend.load() if systems else None)
    for system in systems:
        demos = [*load_demonstrations(), *loso_demonstrations(data_dir, system.name)]
        table[system.name], calls[system.name] = {}, {}
        for margin in sorted(margins):
            replay.margin = margin
            llm = LLMParser(replay, demos=demos, config=LLMParserConfig(max_calls_per_second=0))
            text = pa.array(system.contents, pa.string())
            templates, _ = llm.line_templates(llm.add_batch(text), text)
            scores = evaluate(system.truth, [t or "" for t in templates.to_pylist()])
            table[system.name][margin] = {m: float(getattr(scores, m)) for m in METRICS}
            calls[system.name][margin] = llm.stats.model_calls
        sys.stderr.write(f"{system.name}: {replay.forward_passes} forward passes, "
                         f"{replay.model_secs:.0f} s in the model\n")  # fmt: skip
        if args.record is not None:
            item = {"system": system.name,
                    "scores": {str(m): v for m, v in table[system.name].items()},
                    "calls": {str(m): v for m, v in calls[system.name].items()}}  # fmt: skip
            with args.record.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(item) + "\n")
    chosen = {s: loso_choice(table, s) for s in table} if len(table) > 1 else {}
    rows = []
    for s in table:
        if s in chosen:
            m = chosen[s]
            cells = " ".join(f"{table[s][m][k]:.3f}" for k in METRICS)
            rows.append(f"{s:<12} margin {m:>4} {cells}")
    fixed = {m: {k: sum(table[s][m][k] for s in table) / max(len(table), 1) for k in METRICS}
             for m in sorted(margins)}  # fmt: skip
    print("system       LOSO margin  GA    PA    FGA   FTA")
    print("\n".join(rows))
    if chosen:
        loso_mean = {k: sum(table[s][chosen[s]][k] for s in table) / len(table) for k in METRICS}
        print("mean (LOSO-chosen margins): " + " ".join(f"{loso_mean[k]:.3f}" for k in METRICS))
    for m, means in fixed.items():
        print(f"mean at margin {m}: " + " ".join(f"{means[k]:.3f}" for k in METRICS))
    out = {"margins": [str(m) for m in sorted(margins)],
           "per_system": {s: {str(m): v for m, v in t.items()} for s, t in table.items()},
           "model_calls": {s: {str(m): v for m, v in c.items()} for s, c in calls.items()},
           "loso_choice": {s: str(m) for s, m in chosen.items()},
           "forward_passes": replay.forward_passes, "model_secs": replay.model_secs}  # fmt: skip
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
