"""NL2LogQL benchmark: questions -> LogQL on the held-out split, scored three ways.

Run ``python -m benchmarks.nl2logql`` (``--quick`` for the first 20 held-out questions,
``--json`` for one JSON object of every figure as the last output line, ``--outcomes FILE``
for every question's outcome as JSON lines, ``--data-dir`` for
another shared data directory, ``--systems`` to choose what runs).

Why it is built this way:

* **Data**: the shared NL2LogQL pairs (``nl2logql/nl2logql_train.jsonl``, read by path),
  normalised by our parser; records it rejects are counted and left out. The held-out split
  (:mod:`logpipe.nl.data`: whole question-template groups, ~20% of each application family)
  is what every system is scored on; systems only ever see the training side.
* **Store**: the Loghub 2k samples of OpenSSH, OpenStack and HDFS, ingested once per
  application (and ``hostname``) that the dataset's queries name, each line labelled from
  its header (:mod:`logpipe.nl.evalstore`); all systems end at one anchor time.
* **Scores** (:mod:`logpipe.nl.evaluate`): exact match after normalisation (tree
  equality), execution match (same result as the gold query, range queries over the whole
  data span), the same over questions whose gold result is not empty, validity, and latency
  per question (median, p90) on this machine.
* **Systems**: ``retrieval``, the baseline (nearest training question, labels
  substituted; :mod:`logpipe.nl.baseline`); ``base``, the untuned SmolLM2-135M-Instruct and
  ``tuned``, it with a LoRA adapter (``--adapter``), both through the whole loop of
  :func:`logpipe.nl.answer.answer` (schema-aware prompt, ``--candidates`` replies, validation,
  repair, grounding of line filters in the store's templates unless ``--no-grounding``,
  execution), a "cannot answer" scored as an invalid prediction. Beside the baseline,
  for reference only, the same baseline on a split of single pairs rather than question
  groups: the dataset instantiates each question for several applications, so such a split
  scores recall of a near twin.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import (
    LOGHUB_CITATION,
    RESULTS_MD,
    default_data_dir,
    fmt,
    md_table,
    replace_section,
    rich_table,
    run_info,
    table_console,
)
from logpipe.logql.engine import Engine
from logpipe.nl.baseline import RetrievalBaseline
from logpipe.nl.data import DATASET_RELPATH, Rejection, Split, load_split
from logpipe.nl.evalstore import EvalStore, build_store, deployments, load_families
from logpipe.nl.evaluate import Scores, Window, score

FAMILIES = ("openssh", "openstack", "hdfs")
SYSTEMS = ("retrieval", "base", "tuned")
PENDING = {"tuned": "fine-tuned SmolLM2-135M: no adapter given (--adapter DIR, from "
                    "make train-nl2logql)"}  # fmt: skip
QUICK_QUESTIONS = 20
SECTION_BEGIN = "<!-- benchmark:nl2logql:begin -->"
SECTION_END = "<!-- benchmark:nl2logql:end -->"


@dataclass
class Setup:
    split: Split
    rejected: list[Rejection]
    built: EvalStore
    engine: Engine
    window: Window
    labels: dict[str, list[str]]
    ingest_s: float
    templates: list[str]


def prepare(data_dir: Path, store_dir: Path) -> Setup:
    """Read and split the pairs, build the evaluation store, pick the query window."""
    split, rejected = load_split(data_dir / DATASET_RELPATH)
    systems = load_families(data_dir, FAMILIES)
    label_sets = deployments([p.expr for p in split.train + split.heldout], systems)
    started = time.perf_counter()
    built = build_store(store_dir, systems, label_sets)
    ingest_s = time.perf_counter() - started
    span = built.end_ns - built.start_ns
    step = max(span // 48, 60_000_000_000)
    window = Window(built.end_ns - 48 * step, built.end_ns, step)
    templates = [t.template for f in FAMILIES for t in systems[f].templates]
    return Setup(split, rejected, built, Engine(built.store), window, built.label_values,
                 ingest_s, templates)  # fmt: skip


def run_retrieval(setup: Setup, questions: int | None) -> Scores:
    baseline = RetrievalBaseline(setup.split.train)
    pairs = setup.split.heldout[:questions] if questions else setup.split.heldout
    return score(setup.engine, pairs, lambda q: baseline.predict(q, setup.labels), setup.window)


def run_retrieval_random_split(setup: Setup, questions: int | None) -> Scores:
    """The baseline on a split of single pairs (every 5th by a hash of the question): how
    much a split that keeps template variants apart flatters it. For reference only."""
    pairs = setup.split.train + setup.split.heldout
    held = [p for p in pairs if int(hashlib.sha256(p.question.encode()).hexdigest(), 16) % 5 == 0]
    train = [p for p in pairs if p not in held]
    baseline = RetrievalBaseline(train)
    held = held[:questions] if questions else held
    return score(setup.engine, held, lambda q: baseline.predict(q, setup.labels), setup.window)


def run_model(
    setup: Setup, questions: int | None, adapter: Path | None, n: int, grounding: bool = True
) -> Scores:
    """A model through the full loop: schema-aware prompt, ``n`` candidates, validation and
    repair, execution; a "cannot answer" counts as an invalid prediction."""
    from logpipe.models.nl2logql.generate import ModelGenerator, apply_adapter
    from logpipe.models.nl2logql.loader import load_base_model

    from logpipe.nl.answer import answer, engine_executor
    from logpipe.nl.data import group_keys
    from logpipe.nl.ground import TemplateGrounder, store_probe
    from logpipe.nl.prompt import Example, PromptBuilder, schema_from_store

    loaded = load_base_model()
    model = apply_adapter(loaded.model, adapter) if adapter is not None else loaded.model
    generator = ModelGenerator(model, loaded.tokenizer)
    train = setup.split.train
    builder = PromptBuilder([Example(p.question, p.query, k)
                             for p, k in zip(train, group_keys(train), strict=True)])  # fmt: skip
    w = setup.window
    schema = schema_from_store(setup.built.store, w.tenant, templates=setup.templates)
    execute = engine_executor(setup.engine, start_ns=w.start_ns, end_ns=w.end_ns, tenant=w.tenant)
    probe = store_probe(setup.engine, start_ns=w.start_ns, end_ns=w.end_ns, tenant=w.tenant)
    ground = TemplateGrounder(schema.templates, probe).ground if grounding else None
    baseline = RetrievalBaseline(train)

    def predict(question: str) -> str | None:
        prompt = builder.build(question, schema)
        return answer(question, prompt, generator, n=n, labels=schema.labels, execute=execute,
                      fallback=lambda q: baseline.predict(q, setup.labels),
                      ground=ground).query  # fmt: skip

    pairs = setup.split.heldout[:questions] if questions else setup.split.heldout
    return score(setup.engine, pairs, predict, setup.window)


def _section(header: list[str], rows: list[list[str]], info_line: str, split: Split,
             scores: Scores | None) -> str:  # fmt: skip
    gold = ""
    if scores is not None:
        gold = (f" Gold queries with a non-empty result: {scores.gold_nonempty} of "
                f"{scores.n - scores.gold_errors}; gold queries that fail to run: "
                f"{scores.gold_errors}.")  # fmt: skip
    return "\n".join([
        SECTION_BEGIN,
        "## NL2LogQL: questions to LogQL on the held-out split",
        "",
        info_line,
        "",
        f"Held-out split of the shared NL2LogQL pairs: {len(split.heldout)} questions in "
        f"{len(split.heldout_groups)} question groups never trained on (whole groups: no "
        "variant of a held-out question is seen in training). Execution = same result as the "
        "gold query over the Loghub 2k samples of OpenSSH, OpenStack and HDFS; exact = same "
        "normalised syntax tree; valid = parses and validates. Model rows run the whole "
        "`logpipe ask` loop (prompt, candidates, validation, repair, grounding, execution); "
        "latency is per question on this CPU." + gold,
        "",
        md_table(header, rows),
        "",
        f"Data: Loghub 2k samples. {LOGHUB_CITATION}",
        "",
        SECTION_END,
    ])  # fmt: skip


def write_outcomes(path: Path, results: dict[str, Scores]) -> None:
    """Every question's outcome, one JSON object a line, for reading the failures: a rate
    says how often, only the rows say why."""
    with path.open("w", encoding="utf-8") as fh:
        for system, scores in results.items():
            for o in scores.outcomes:
                fh.write(json.dumps({"system": system, **dataclasses.asdict(o)}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nl2logql",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_QUESTIONS} held-out questions only")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="Print every figure as JSON last.")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="shared data directory (default ../shared/data)")  # fmt: skip
    choices = ", ".join(SYSTEMS)
    parser.add_argument("--systems", default="retrieval",
                        help=f"comma-separated, of {choices} (default retrieval)")  # fmt: skip
    parser.add_argument("--adapter", type=Path, default=None,
                        help="LoRA adapter directory for the tuned row")  # fmt: skip
    parser.add_argument("--candidates", type=int, default=2,
                        help="model candidates per question (default 2)")  # fmt: skip
    parser.add_argument("--write-results", action="store_true",
                        help="rewrite this benchmark's section of RESULTS.md")  # fmt: skip
    parser.add_argument("--outcomes", type=Path, default=None,
                        help="also write every question's outcome (system, question, gold, "
                             "predicted, scores, error) to this JSON-lines file")  # fmt: skip
    parser.add_argument("--no-grounding", action="store_true",
                        help="keep line filters that match nothing (ablation of "
                             "logpipe.nl.ground)")  # fmt: skip
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    data_dir = args.data_dir or default_data_dir()
    if not (data_dir / DATASET_RELPATH).is_file():
        print(f"error: {data_dir / DATASET_RELPATH} not found; pass --data-dir", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    info = run_info(args.quick)
    questions = QUICK_QUESTIONS if args.quick else None
    with tempfile.TemporaryDirectory(prefix="logpipe-nl2logql-bench-") as tmp:
        setup = prepare(data_dir, Path(tmp) / "store")
        split = setup.split
        kinds = Counter(r.kind for r in setup.rejected)
        console.print(
            f"pairs: {len(split.train) + len(split.heldout)} usable, {len(setup.rejected)} "
            f"rejected by our parser ({kinds['parse']} syntax, {kinds['validation']} "
            f"validation); train {len(split.train)}, held out {len(split.heldout)} "
            f"({len(split.heldout_groups)} question groups)"
        )
        console.print(f"store: {setup.built.streams} streams, {setup.built.lines:,} lines, "
                      f"ingested in {setup.ingest_s:.1f} s")  # fmt: skip
        results: dict[str, Scores] = {}
        for system in systems:
            if system == "tuned" and args.adapter is None:
                console.print(f"{system}: {PENDING[system]}")
                continue
            if system == "retrieval":
                results[system] = run_retrieval(setup, questions)
                results["retrieval, random-pair split (leaky)"] = run_retrieval_random_split(
                    setup, questions
                )
            else:
                adapter = args.adapter if system == "tuned" else None
                results[system] = run_model(
                    setup, questions, adapter, args.candidates, grounding=not args.no_grounding
                )

    header = ["system", "questions", "exact", "execution", "execution (gold not empty)",
              "valid", "latency median s", "latency p90 s"]  # fmt: skip
    rows = []
    for name, s in results.items():
        rows.append([name, str(s.n), fmt(s.exact), fmt(s.execution), fmt(s.execution_nonempty),
                     fmt(s.valid), fmt(s.latency(0.5), 4), fmt(s.latency(0.9), 4)])  # fmt: skip
    for name in systems:
        if name not in results:
            rows.append([name, "-", "-", "-", "-", "-", "-", "-"])
    out = table_console()
    out.print(rich_table("NL2LogQL, held-out split", header, rows, {"system"}))
    any_scores = next(iter(results.values()), None)
    if any_scores is not None:
        out.print(f"gold queries with a non-empty result: {any_scores.gold_nonempty} of "
                  f"{any_scores.n - any_scores.gold_errors}; gold queries that fail to run: "
                  f"{any_scores.gold_errors}")  # fmt: skip
    out.print(f"data: Loghub 2k samples. {LOGHUB_CITATION}")
    if args.outcomes is not None:
        write_outcomes(args.outcomes, results)
        out.print(f"wrote {args.outcomes}")
    if args.write_results:
        info_line = (f"Produced by `python -m benchmarks.nl2logql {' '.join(argv or sys.argv[1:])}`"
                     f" on {info.date}, commit `{info.commit}`; machine: {info.cpu}, "
                     f"{info.cores} cores (shared: latencies are upper bounds); Python "
                     f"{info.python}.")  # fmt: skip
        replace_section(RESULTS_MD, _section(header, rows, info_line, split, any_scores),
                        SECTION_BEGIN, SECTION_END)  # fmt: skip
        out.print(f"wrote {RESULTS_MD}")
    if args.json:
        dataset = {"usable": len(split.train) + len(split.heldout),
                   "rejected": len(setup.rejected), "train": len(split.train),
                   "heldout": len(split.heldout)}  # fmt: skip
        scores = {k: v.as_dict() for k, v in results.items()}
        figures: dict[str, Any] = {"run": info.as_json(), "dataset": dataset, "systems": scores}
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
