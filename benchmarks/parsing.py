"""Parsing benchmark: accuracy on Loghub-2k and end-to-end speed, ours beside Drain3.

Run ``python -m benchmarks.parsing`` (``--quick`` for a small run, ``--json`` for one JSON
object of every figure as the last output line, ``--write-results`` to rewrite this
benchmark's section of ``benchmarks/RESULTS.md``, ``--data DIR`` for the shared corpora,
``--parsers``/``--systems`` to run only some, e.g. ``--parsers ours,llm --systems Linux``).

``--parsers`` may add ``llm``, the hybrid parser of ``--parser llm`` with the local model
(:mod:`benchmarks.parsing_llm`: leave-one-system-out demonstrations, model calls per 1,000
lines, cache hit rate, lines/s, a cold start and warm end-to-end speed); its mean rows get
ratios over the statistical parser and each drain3 baseline of the same run.

Why it is built this way:

* **Accuracy** uses the four Loghub-2.0 metrics exactly as its evaluator computes them
  (:mod:`logpipe.evaluation`), on the ``*_structured_corrected.csv`` ground truth of the 14
  Loghub-2k systems (the paper's set, hence the headline mean) and of Android and Windows
  (``loghub-2k-extra``, reported in a second mean over all 16). Every parser sees the same
  ``Content`` column and each line is reported with the *final* template of its cluster, since
  online miners only generalise templates as lines arrive. Baselines run in the same process
  and the same run: stock Drain3 (``TemplateMinerConfig()``, no masking) and Drain3 with the
  masking of its example config plus Loghub-2.0's template post-processing.
* **Speed** is end to end through each command line, interpreter start, reading and writing
  included, because that is what a user waits for: ``logpipe parse FILE --preset SYS --out DIR``
  against ``benchmarks/drain3_cli.py`` doing the same work with Drain3. Best of N runs; a
  failing command is recorded in the table, never a crash of the benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig
from logpipe.models.llm_parser.train_probe import LabelledSystem
from rich.console import Console

from benchmarks.common import (
    LOGHUB_CITATION,
    REPO,
    RESULTS_MD,
    RunInfo,
    bibtex_block,
    byte_compile_checkout,
    cli_argv,
    count_lines,
    default_data_dir,
    fmt,
    fmt_rate,
    fmt_ratio,
    md_table,
    replace_section,
    rich_table,
    run_command,
    startup_secs,
    table_console,
)
from benchmarks.common import run_info as common_run_info
from benchmarks.drain3_cli import example_config, to_loghub_template
from benchmarks.parsing_llm import (
    COLD_START_TARGET_SECS,
    WARM_TARGET_LINES_PER_SEC,
    ColdStart,
    LLMBenchParser,
    WarmRun,
    run_cold_start,
    run_warm_speed,
)
from logpipe.evaluation import ParsingScores, evaluate, read_labelled_lines
from logpipe.parsing import TemplateMiner as OurMiner
from logpipe.parsing.llm_backends import LOCAL_MODES

__all__ = [
    "AccuracyReport",
    "ParserRun",
    "SpeedReport",
    "SpeedRun",
    "SystemData",
    "find_systems",
    "main",
    "render_markdown",
    "run_accuracy",
    "run_speed",
    "time_command",
    "to_json",
    "write_results",
]

CORE_SET = "loghub-2k"
EXTRA_SET = "loghub-2k-extra"
METRICS = ("ga", "pa", "fga", "fta")
SPEED_TARGET = 75_000.0
QUICK_SYSTEMS = ("Apache", "HDFS", "OpenSSH", "Android")
QUICK_LINES = 1000
SECTION_BEGIN = "<!-- benchmark:parsing:begin -->"
SECTION_END = "<!-- benchmark:parsing:end -->"
LOGHUB2_CITATION = (
    "Zhihan Jiang, Jinyang Liu, Junjie Huang, Yichen Li, Yintong Huo, Jiazhen Gu, Zhuangbin Chen, "
    "Jieming Zhu, Michael R. Lyu. A Large-Scale Evaluation for Log Parsing Techniques: How Far "
    "Are We? ISSTA 2024."
)


# --- parsers ------------------------------------------------------------------------------


def _load_postprocess() -> tuple[Callable[[str], str], str]:
    """Loghub-2.0's template post-processing, or the identity while that module is missing.

    Looked up at run time so the benchmark runs before ``logpipe.parsing.postprocess`` lands;
    the table says which one was used. Only the module's own absence falls back: an import
    error *inside* it propagates.
    """
    name = "logpipe.parsing.postprocess"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return (lambda template: template), "identity fallback (logpipe.parsing.postprocess absent)"
    return cast(Callable[[str], str], module.loghub_postprocess), f"{name}.loghub_postprocess"


POSTPROCESS, POSTPROCESS_SOURCE = _load_postprocess()


def parse_ours(contents: Sequence[str]) -> list[str]:
    """Our miner, one shared instance per system; each line gets its cluster's final template."""
    miner = OurMiner()
    text = pa.array(list(contents), pa.string())
    templates, _ = miner.line_templates(miner.add_batch(text), text)
    return [t or "" for t in templates.to_pylist()]


def _drain3_final_templates(
    miner: Any, contents: Sequence[str]
) -> tuple[list[int], dict[int, str]]:
    ids = [cast(int, miner.add_log_message(c)["cluster_id"]) for c in contents]
    clusters = miner.drain.id_to_cluster
    return ids, {cid: cast(str, clusters[cid].get_template()) for cid in set(ids)}


def parse_drain3_default(contents: Sequence[str]) -> list[str]:
    """Stock Drain3: ``TemplateMinerConfig()`` as constructed (no masking, no .ini file read)."""
    ids, final = _drain3_final_templates(TemplateMiner(config=TemplateMinerConfig()), contents)
    return [final[cid] for cid in ids]


def parse_drain3_masked_pp(contents: Sequence[str]) -> list[str]:
    """Drain3 with its example masking, masks written as ``<*>``, then Loghub-2.0's PP."""
    ids, final = _drain3_final_templates(TemplateMiner(config=example_config()), contents)
    done = {cid: POSTPROCESS(to_loghub_template(t)) for cid, t in final.items()}
    return [done[cid] for cid in ids]


# (key, label, function); the first one is ours, the rest are baselines.
PARSERS: tuple[tuple[str, str, Callable[[Sequence[str]], list[str]]], ...] = (
    ("ours", "logpipe", parse_ours),
    ("drain3_default", "drain3 (default)", parse_drain3_default),
    ("drain3_masked_pp", "drain3 (masked+PP)", parse_drain3_masked_pp),
)
LLM_KEY = "llm"
LLM_LABEL = "logpipe --parser llm"


# --- accuracy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemData:
    """One Loghub system's message bodies and truth templates, line aligned."""

    name: str
    dataset: str
    contents: list[str]
    truth: list[str | None]


@dataclass(frozen=True)
class ParserRun:
    """One parser on one system: its scores, or why it has none."""

    scores: ParsingScores | None
    secs: float
    error: str | None = None
    extra: dict[str, float] | None = None  # parser-specific figures (the LLM parser's)


@dataclass
class AccuracyReport:
    """Per-system scores of every parser and the means the README quotes."""

    systems: list[SystemData]
    runs: dict[tuple[str, str], ParserRun]  # (system, parser key) -> run
    parsers: list[tuple[str, str]]  # (key, label)

    def mean(self, parser: str, metric: str, dataset: str | None) -> float | None:
        """Mean over the systems of ``dataset`` (all when None); None if any run failed."""
        values: list[float] = []
        for system in self.systems:
            if dataset is not None and system.dataset != dataset:
                continue
            scores = self.runs[(system.name, parser)].scores
            if scores is None:
                return None
            values.append(float(getattr(scores, metric)))
        return sum(values) / len(values) if values else None

    def means(self, dataset: str | None) -> dict[str, dict[str, float | None]]:
        return {k: {m: self.mean(k, m, dataset) for m in METRICS} for k, _ in self.parsers}

    def ratios(
        self, dataset: str | None, numerator: str | None = None
    ) -> dict[str, dict[str, float | None]]:
        """``numerator`` (default: ours, the first parser) / each other parser, for each
        mean metric (None where undefined)."""
        means = self.means(dataset)
        ours_key = numerator or self.parsers[0][0]
        out: dict[str, dict[str, float | None]] = {}
        for key, _ in self.parsers:
            if key == ours_key or (numerator is None and key == LLM_KEY):
                continue
            out[key] = {}
            for m in METRICS:
                a, b = means[ours_key][m], means[key][m]
                out[key][m] = a / b if a is not None and b else None
        return out

    def count(self, dataset: str | None) -> int:
        return sum(1 for s in self.systems if dataset is None or s.dataset == dataset)


def find_systems(
    data_dir: Path, names: Sequence[str] | None = None, limit: int | None = None
) -> list[SystemData]:
    """Every ``<set>/<Sys>/<Sys>_2k.log_structured_corrected.csv`` under the two Loghub sets."""
    systems: list[SystemData] = []
    for dataset in (CORE_SET, EXTRA_SET):
        base = data_dir / dataset
        if not base.is_dir():
            continue
        for sys_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            if names is not None and sys_dir.name not in names:
                continue
            path = sys_dir / f"{sys_dir.name}_2k.log_structured_corrected.csv"
            if path.is_file():
                contents, truth = read_labelled_lines(path, limit)
                systems.append(SystemData(sys_dir.name, dataset, contents, truth))
    return systems


def run_accuracy(
    systems: Sequence[SystemData],
    parsers: Sequence[tuple[str, str, Callable[[Sequence[str]], list[str]]]] = PARSERS,
    progress: Console | None = None,
) -> AccuracyReport:
    """Run every parser on every system and score it; a parser that raises is recorded."""
    runs: dict[tuple[str, str], ParserRun] = {}
    for system in systems:
        for key, _label, parse in parsers:
            if progress is not None:
                progress.print(f"accuracy: {system.name} / {key}", highlight=False)
            started = time.perf_counter()
            try:
                if isinstance(parse, LLMBenchParser):  # leaves the system's own data out
                    predicted = parse.parse_system(system.name, system.contents)
                else:
                    predicted = parse(system.contents)
            except Exception as exc:  # noqa: BLE001 - one failing parser must not hide the rest
                runs[(system.name, key)] = ParserRun(
                    None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
                )
                continue
            secs = time.perf_counter() - started
            extra = dict(parse.last_extra) if isinstance(parse, LLMBenchParser) else None
            runs[(system.name, key)] = ParserRun(evaluate(system.truth, predicted), secs,
                                                 extra=extra)  # fmt: skip
    return AccuracyReport(list(systems), runs, [(k, label) for k, label, _ in parsers])


# --- speed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedRun:
    """One tool on one raw file: best wall time of its runs, or the failure."""

    tool: str
    file: str
    lines: int
    runs_secs: list[float]
    error: str | None = None

    @property
    def best_secs(self) -> float | None:
        return min(self.runs_secs) if self.runs_secs and self.error is None else None

    @property
    def lines_per_sec(self) -> float | None:
        best = self.best_secs
        return self.lines / best if best else None


@dataclass
class SpeedReport:
    """Every (tool, file) run, plus the interpreter-start cost of each tool for context."""

    runs: list[SpeedRun] = field(default_factory=list)
    startup_secs: dict[str, float | None] = field(default_factory=dict)
    tools: tuple[str, ...] = ("ours", "drain3")

    def get(self, tool: str, file: str) -> SpeedRun | None:
        return next((r for r in self.runs if r.tool == tool and r.file == file), None)

    def files(self) -> list[str]:
        return list(dict.fromkeys(r.file for r in self.runs))

    def total(self, tool: str) -> tuple[int, float | None]:
        """Lines and summed best seconds over all files (None if any run of the tool failed)."""
        runs = [r for r in self.runs if r.tool == tool]
        secs = [r.best_secs for r in runs]
        lines = sum(r.lines for r in runs)
        if not runs or any(s is None for s in secs):
            return lines, None
        return lines, sum(cast(float, s) for s in secs)

    def ratio(self, file: str | None) -> float | None:
        """ours lines/s over drain3 lines/s, for one file or (None) the total."""
        if file is None:
            (la, sa), (lb, sb) = self.total("ours"), self.total("drain3")
            a = la / sa if sa else None
            b = lb / sb if sb else None
        else:
            ra, rb = self.get("ours", file), self.get("drain3", file)
            a = ra.lines_per_sec if ra else None
            b = rb.lines_per_sec if rb else None
        return a / b if a is not None and b else None


def time_command(
    argv_for_out: Callable[[Path], list[str]], n_runs: int, timeout_secs: float = 600.0
) -> tuple[list[float], str | None]:
    """Run a command ``n_runs`` times, each writing into a fresh directory; time each run.

    Returns the wall times and, if a run failed (non-zero exit, timeout, nothing written),
    a one-line reason; timing stops at the first failure.
    """
    times: list[float] = []
    for _ in range(n_runs):
        with tempfile.TemporaryDirectory(prefix="logpipe-bench-") as tmp:
            out = Path(tmp) / "out"
            result = run_command(argv_for_out(out), timeout_secs)
            if result.error is not None:
                return times, result.error
            if not out.is_dir() or not any(out.iterdir()):
                return times, f"exit 0 but nothing written to --out {out.name}"
            times.append(result.secs)
    return times, None


def ours_command(log_file: Path, preset: str) -> Callable[[Path], list[str]]:
    """``logpipe parse FILE --preset SYS --out DIR`` through this interpreter and checkout."""
    return lambda out: [
        *cli_argv(),
        "parse",
        str(log_file),
        "--preset",
        preset,
        "--out",
        str(out),
    ]


def drain3_command(log_file: Path, log_format: str) -> Callable[[Path], list[str]]:
    script = REPO / "benchmarks" / "drain3_cli.py"
    return lambda out: [
        sys.executable,
        str(script),
        str(log_file),
        "--log-format",
        log_format,
        "--out",
        str(out),
        "--quiet",
    ]


def load_formats(data_dir: Path) -> dict[str, str]:
    """Loghub's per-system format strings (``formats.json`` of both sets)."""
    formats: dict[str, str] = {}
    for dataset in (CORE_SET, EXTRA_SET):
        path = data_dir / dataset / "formats.json"
        if path.is_file():
            formats.update(json.loads(path.read_text(encoding="utf-8")))
    return formats


def preset_of(log_file: Path) -> str:
    """``HDFS_20000.log`` -> ``HDFS``: the system name is the file name up to the first ``_``."""
    return log_file.name.split("_", 1)[0]


def run_speed(
    raw_files: Sequence[Path],
    formats: dict[str, str],
    n_runs: int,
    progress: Console | None = None,
    ours: Callable[[Path, str], Callable[[Path], list[str]]] = ours_command,
) -> SpeedReport:
    """Time ours and the Drain3 script on each raw file, best of ``n_runs`` each."""
    report = SpeedReport()
    byte_compile_checkout()
    report.startup_secs["ours"] = startup_secs([*cli_argv(), "--version"], n_runs)
    report.startup_secs["drain3"] = startup_secs(
        [sys.executable, str(REPO / "benchmarks" / "drain3_cli.py"), "--version"], n_runs
    )
    for log_file in raw_files:
        lines = count_lines(log_file)
        system = preset_of(log_file)
        if progress is not None:
            progress.print(f"speed: {log_file.name} ({lines} lines)", highlight=False)
        times, error = time_command(ours(log_file, system), n_runs)
        report.runs.append(SpeedRun("ours", log_file.name, lines, times, error))
        if system in formats:
            times, error = time_command(drain3_command(log_file, formats[system]), n_runs)
        else:
            times, error = [], f"no Loghub format for {system} in formats.json"
        report.runs.append(SpeedRun("drain3", log_file.name, lines, times, error))
    return report


# --- output -------------------------------------------------------------------------------


def _run_cells(run: ParserRun) -> list[str]:
    if run.scores is None:
        return ["failed"] * len(METRICS) + [fmt(run.secs, 2)]
    return [fmt(getattr(run.scores, m)) for m in METRICS] + [fmt(run.secs, 2)]


def _accuracy_rows(acc: AccuracyReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for system in acc.systems:
        for i, (key, label) in enumerate(acc.parsers):
            run = acc.runs[(system.name, key)]
            head = [system.name if i == 0 else "", system.dataset if i == 0 else "", label]
            rows.append(head + _run_cells(run))
    return rows


def _mean_sets(acc: AccuracyReport) -> list[tuple[str, str | None]]:
    n_core, n_all = acc.count(CORE_SET), acc.count(None)
    return [(f"mean of {n_core} {CORE_SET} systems", CORE_SET), (f"mean of all {n_all}", None)]


def _mean_rows(acc: AccuracyReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for title, dataset in _mean_sets(acc):
        means = acc.means(dataset)
        ratios = acc.ratios(dataset)
        for i, (key, label) in enumerate(acc.parsers):
            rows.append([title if i == 0 else "", label] + [fmt(means[key][m]) for m in METRICS])
        for key, label in acc.parsers[1:]:
            if key == LLM_KEY:
                continue
            cells = [fmt_ratio(ratios[key][m]) for m in METRICS]
            rows.append(["", f"ratio ours / {label}", *cells])
        if any(k == LLM_KEY for k, _ in acc.parsers):
            llm_ratios = acc.ratios(dataset, numerator=LLM_KEY)
            labels = dict(acc.parsers)
            for key, llm_ratio in llm_ratios.items():
                cells = [fmt_ratio(llm_ratio[m]) for m in METRICS]
                rows.append(["", f"ratio llm / {labels[key]}", *cells])
    return rows


LLM_HEADER = ["system", "calls /1k lines", "cache hit rate", "accepted", "repaired",
              "rejected", "merges", "lines/s"]  # fmt: skip


def _llm_rows(acc: AccuracyReport) -> list[list[str]]:
    """Per system (and the mean): what the LLM parser's model cost and what came of it."""
    rows: list[list[str]] = []
    extras: list[dict[str, float]] = []
    for system in acc.systems:
        run = acc.runs.get((system.name, LLM_KEY))
        if run is None or run.extra is None:
            continue
        e = run.extra
        extras.append(e)
        rows.append([system.name, fmt(e["calls_per_1k_lines"], 1), fmt(e["cache_hit_rate"]),
                     str(int(e["accepted"])), str(int(e["repaired"])), str(int(e["rejected"])),
                     str(int(e["merges"])), fmt_rate(e["lines_per_sec"])])  # fmt: skip
    if extras:

        def mean(k: str) -> float:
            return sum(e[k] for e in extras) / len(extras)

        rows.append([f"mean of {len(extras)}", fmt(mean("calls_per_1k_lines"), 1),
                     fmt(mean("cache_hit_rate")), fmt(mean("accepted"), 1),
                     fmt(mean("repaired"), 1), fmt(mean("rejected"), 1), fmt(mean("merges"), 1),
                     fmt_rate(mean("lines_per_sec"))])  # fmt: skip
    return rows


@dataclass
class LLMSpeed:
    """The LLM parser's cold start and warm end-to-end runs (CLI, default budget)."""

    cold: list[ColdStart] = field(default_factory=list)
    warm: list[WarmRun] = field(default_factory=list)


COLD_HEADER = ["system", "lines", "seconds", "model calls", "< 2 min", "status"]
WARM_HEADER = ["file", "lines", "best s", "lines/s", "model calls", "warm-up s", ">= 10k/s",
               "status"]  # fmt: skip


def _cold_rows(llm: LLMSpeed) -> list[list[str]]:
    return [[c.system, f"{c.lines:,}", fmt(c.secs, 1), str(c.model_calls),
             "n/a" if c.secs is None else ("yes" if c.secs < COLD_START_TARGET_SECS else "no"),
             c.error or "ok"] for c in llm.cold]  # fmt: skip


def _warm_rows(llm: LLMSpeed) -> list[list[str]]:
    rows = []
    for w in llm.warm:
        rate = w.lines_per_sec
        ok = "n/a" if rate is None else ("yes" if rate >= WARM_TARGET_LINES_PER_SEC else "no")
        rows.append([w.file, f"{w.lines:,}", fmt(w.secs, 3), fmt_rate(rate), str(w.model_calls),
                     fmt(w.warmup_secs, 1), ok, w.error or "ok"])  # fmt: skip
    return rows


def _speed_rows(speed: SpeedReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for file in speed.files():
        for i, tool in enumerate(speed.tools):
            run = speed.get(tool, file)
            if run is None:
                continue
            status = "ok" if run.error is None else run.error
            rows.append(
                [
                    file if i == 0 else "",
                    f"{run.lines:,}" if i == 0 else "",
                    tool,
                    fmt(run.best_secs, 3),
                    fmt_rate(run.lines_per_sec),
                    str(len(run.runs_secs)),
                    status,
                ]
            )
        ratio = speed.ratio(file)
        rows.append(["", "", "ratio ours / drain3", "", fmt_ratio(ratio)])
        rows[-1] += ["", ""]
    for i, tool in enumerate(speed.tools):
        lines, secs = speed.total(tool)
        rate = lines / secs if secs else None
        head = ["total", f"{lines:,}"] if i == 0 else ["", ""]
        rows.append([*head, tool, fmt(secs, 3), fmt_rate(rate), "", ""])
    ratio = speed.ratio(None)
    rows.append(["", "", "ratio ours / drain3", "", fmt_ratio(ratio)])
    rows[-1] += ["", ""]
    return rows


ACC_HEADER = ["system", "set", "parser", "GA", "PA", "FGA", "FTA", "parse s"]
MEAN_HEADER = ["", "parser", "GA", "PA", "FGA", "FTA"]
SPEED_HEADER = ["file", "lines", "tool", "best s", "lines/s", "runs", "status"]


def _speed_verdict(speed: SpeedReport) -> list[str]:
    out: list[str] = []
    for file in speed.files():
        run = speed.get("ours", file)
        rate = run.lines_per_sec if run else None
        verdict = "n/a (failed)" if rate is None else ("yes" if rate >= SPEED_TARGET else "no")
        out.append(f"{file}: ours >= {SPEED_TARGET:,.0f} lines/s: {verdict}")
    return out


_TEXT_COLUMNS = {"system", "set", "parser", "file", "tool", "status", ""}


def print_tables(
    console: Console,
    acc: AccuracyReport | None,
    speed: SpeedReport | None,
    llm: LLMSpeed | None = None,
) -> None:
    """The human-readable tables (the markdown has the same ones)."""
    if acc is not None:
        console.print(
            rich_table("Accuracy per system", ACC_HEADER, _accuracy_rows(acc), _TEXT_COLUMNS)
        )
        console.print(rich_table("Accuracy means", MEAN_HEADER, _mean_rows(acc), _TEXT_COLUMNS))
        console.print(f"post-processing for drain3 (masked+PP): {POSTPROCESS_SOURCE}")
        llm_rows = _llm_rows(acc)
        if llm_rows:
            console.print(rich_table("LLM parser: model use (leave-one-system-out)", LLM_HEADER,
                                     llm_rows, _TEXT_COLUMNS))  # fmt: skip
    if llm is not None:
        if llm.cold:
            console.print(rich_table("LLM parser: cold start (CLI, default budget)",
                                     COLD_HEADER, _cold_rows(llm), _TEXT_COLUMNS))  # fmt: skip
        if llm.warm:
            console.print(rich_table("LLM parser: warm end-to-end speed (CLI)", WARM_HEADER,
                                     _warm_rows(llm), _TEXT_COLUMNS))  # fmt: skip
    if speed is not None:
        console.print(
            rich_table("End-to-end speed", SPEED_HEADER, _speed_rows(speed), _TEXT_COLUMNS)
        )
        for line in _speed_verdict(speed):
            console.print(line, highlight=False)
        startup = ", ".join(f"{k} {fmt(v, 3)} s" for k, v in speed.startup_secs.items())
        console.print(f"interpreter start + imports (included above): {startup}")


def run_info(quick: bool) -> RunInfo:
    return common_run_info(quick, {"drain3": version("drain3")})


def render_markdown(
    info: RunInfo,
    acc: AccuracyReport | None,
    speed: SpeedReport | None,
    citation: str | None = None,
    llm: LLMSpeed | None = None,
) -> str:
    """This benchmark's section of RESULTS.md, between its begin/end markers."""
    parts = [
        SECTION_BEGIN,
        "## Parsing: accuracy on Loghub-2k and end-to-end speed",
        "",
        f"Produced by `python -m benchmarks.parsing{' --quick' if info.quick else ''}` "
        f"on {info.date}, commit `{info.commit}`; machine: {info.cpu}, {info.cores} cores; "
        f"Python {info.python}, drain3 {info.versions['drain3']}.",
    ]
    if acc is not None:
        parts += [
            "",
            "### Accuracy (Loghub-2.0 metrics)",
            "",
            "GA, PA, FGA and FTA as computed by the Loghub-2.0 evaluator "
            "(see `logpipe/evaluation.py`), on each system's `*_structured_corrected.csv` "
            "(`Content` in, final cluster template per line out). Baselines: stock drain3 "
            "(`TemplateMinerConfig()`), and drain3 with the masking of its example config "
            "plus Loghub-2.0's template post-processing "
            f"(in this run: {POSTPROCESS_SOURCE}). "
            f"The headline is the mean over the {acc.count(CORE_SET)} `{CORE_SET}` systems "
            "(the paper's set); the second mean adds Android and Windows. "
            "Check on the metrics: on Apache, HDFS, Spark, Thunderbird and Zookeeper stock "
            "drain3 gives the paper's published Drain figures to the printed 3 decimals "
            "(`tests/unit/test_benchmark_parsing.py`, marker `data`).",
            "",
            md_table(MEAN_HEADER, _mean_rows(acc)),
            "",
            md_table(ACC_HEADER, _accuracy_rows(acc)),
        ]
        llm_rows = _llm_rows(acc)
        if llm_rows:
            parts += ["", "### LLM parser: model use (leave-one-system-out)", "",
                      md_table(LLM_HEADER, llm_rows)]  # fmt: skip
    if llm is not None and (llm.cold or llm.warm):
        parts += ["", "### LLM parser: cold start and warm speed (CLI, default budget)", ""]
        if llm.cold:
            parts += [md_table(COLD_HEADER, _cold_rows(llm)), ""]
        if llm.warm:
            parts += [md_table(WARM_HEADER, _warm_rows(llm))]
    if speed is not None:
        startup = ", ".join(f"{k} {fmt(v, 3)} s" for k, v in speed.startup_secs.items())
        parts += [
            "",
            "### End-to-end speed",
            "",
            "Wall time of the whole command (interpreter start, read, frame, mine, write CSVs), "
            "best of the runs shown: `logpipe parse FILE --preset SYS --out DIR` against "
            "`benchmarks/drain3_cli.py` (drain3 with its example masking, Loghub format regex, "
            "same CSV outputs). Interpreter start and imports, included in the times: "
            f"{startup}.",
            "",
            md_table(SPEED_HEADER, _speed_rows(speed)),
            "",
            *[f"- {line}" for line in _speed_verdict(speed)],
        ]
    parts += [
        "",
        "### Data and metrics",
        "",
        f"Data: Loghub, {LOGHUB_CITATION} Metrics and corrected ground truth: Loghub-2.0, "
        f"{LOGHUB2_CITATION}",
    ]
    parts += bibtex_block(citation)
    parts.append(SECTION_END)
    return "\n".join(parts) + "\n"


def write_results(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (other benchmarks' sections are kept)."""
    replace_section(path, section, SECTION_BEGIN, SECTION_END)


def to_json(
    info: RunInfo,
    acc: AccuracyReport | None,
    speed: SpeedReport | None,
    llm: LLMSpeed | None = None,
) -> dict[str, Any]:
    """Every figure in one JSON-ready object, units in the key names."""
    out: dict[str, Any] = {"benchmark": "parsing", **info.as_json()}
    if llm is not None:
        out["llm_speed"] = {
            "cold_start": [c.__dict__ for c in llm.cold],
            "warm": [{**w.__dict__, "lines_per_sec": w.lines_per_sec} for w in llm.warm],
        }
    if acc is not None:
        per_system: dict[str, Any] = {}
        for system in acc.systems:
            entry: dict[str, Any] = {"dataset": system.dataset, "n_lines": len(system.truth)}
            for key, _ in acc.parsers:
                run = acc.runs[(system.name, key)]
                entry[key] = {
                    **(run.scores.as_dict() if run.scores else {}),
                    "parse_secs": run.secs,
                    "error": run.error,
                    **({"llm": run.extra} if run.extra is not None else {}),
                }
            per_system[system.name] = entry
        out["accuracy"] = {
            "postprocess": POSTPROCESS_SOURCE,
            "systems": per_system,
            "mean_core": acc.means(CORE_SET),
            "mean_core_n_systems": acc.count(CORE_SET),
            "mean_all": acc.means(None),
            "mean_all_n_systems": acc.count(None),
            "ratio_core": acc.ratios(CORE_SET),
            "ratio_all": acc.ratios(None),
        }
        if any(k == LLM_KEY for k, _ in acc.parsers):
            out["accuracy"]["ratio_core_llm"] = acc.ratios(CORE_SET, numerator=LLM_KEY)
            out["accuracy"]["ratio_all_llm"] = acc.ratios(None, numerator=LLM_KEY)
    if speed is not None:
        files: dict[str, Any] = {}
        for file in speed.files():
            files[file] = {"ratio_ours_over_drain3": speed.ratio(file)}
            for tool in speed.tools:
                srun = speed.get(tool, file)
                if srun is not None:
                    files[file]["lines"] = srun.lines
                    files[file][tool] = {
                        "best_secs": srun.best_secs,
                        "lines_per_sec": srun.lines_per_sec,
                        "runs_secs": srun.runs_secs,
                        "error": srun.error,
                    }
            ours = speed.get("ours", file)
            rate = ours.lines_per_sec if ours else None
            files[file]["ours_meets_target"] = rate is not None and rate >= SPEED_TARGET
        totals: dict[str, Any] = {}
        for tool in speed.tools:
            lines, secs = speed.total(tool)
            totals[tool] = {
                "lines": lines,
                "secs": secs,
                "lines_per_sec": lines / secs if secs else None,
            }
        out["speed"] = {
            "target_lines_per_sec": SPEED_TARGET,
            "startup_secs": speed.startup_secs,
            "files": files,
            "total": totals,
            "ratio_total_ours_over_drain3": speed.ratio(None),
        }
    return out


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 ok, 1 no data, 2 usage."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parsing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Few systems, lines and runs.")
    parser.add_argument("--json", action="store_true", help="Last output line: one JSON object.")
    parser.add_argument("--write-results", action="store_true", help="Rewrite RESULTS.md.")
    parser.add_argument("--data", type=Path, default=None, help="Shared data directory.")
    parser.add_argument("--runs", type=int, default=None, help="Speed runs per file (3; quick 1).")
    parser.add_argument("--skip-speed", action="store_true", help="Accuracy only.")
    parser.add_argument("--skip-accuracy", action="store_true", help="Speed only.")
    parser.add_argument(
        "--parsers",
        default=",".join(k for k, _, _ in PARSERS),
        help=f"Comma-separated parsers: {', '.join(_parser_keys())} "
        "(ours always runs when any drain3 one does: ratios).",
    )
    parser.add_argument(
        "--systems",
        default=None,
        help="Comma-separated Loghub systems (default: all; --quick: a few).",
    )
    parser.add_argument(
        "--llm-budget",
        type=float,
        default=0.0,
        help="Model calls per second for the llm accuracy rows (0: unlimited).",
    )
    parser.add_argument(
        "--llm-mode",
        choices=LOCAL_MODES,
        default="probe",
        help="How the llm rows ask the local model (default: probe, the CLI's default; its "
        "head is trained per scored system on the other systems only).",
    )
    parser.add_argument(
        "--llm-margin",
        type=float,
        default=None,
        help="Local model margin for the llm rows (selects the score mode).",
    )
    parser.add_argument(
        "--llm-cold-start",
        default="Linux",
        help="System whose 2k file times the llm parser's cold start.",
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.parsers.split(",") if k.strip()]
    unknown = [k for k in keys if k not in _parser_keys()]
    if unknown:
        parser.error(f"unknown parsers: {', '.join(unknown)}")
    chosen = [p for p in PARSERS if p[0] in keys or p[0] == "ours"]
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    n_runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if n_runs < 1:
        parser.error("--runs must be at least 1")

    data_dir = (args.data or default_data_dir()).resolve()
    console = table_console()
    progress = Console(stderr=True)
    if not (data_dir / CORE_SET).is_dir():
        progress.print(f"benchmarks.parsing: error: no {CORE_SET} under {data_dir}; pass --data")
        return 1

    acc: AccuracyReport | None = None
    if not args.skip_accuracy:
        names = args.systems.split(",") if args.systems else (
            QUICK_SYSTEMS if args.quick else None)  # fmt: skip
        systems = find_systems(data_dir, names=names, limit=QUICK_LINES if args.quick else None)
        if LLM_KEY in keys:
            labelled = [LabelledSystem(x.name, x.contents, x.truth) for x in systems]
            say = lambda m: progress.print(m, highlight=False)  # noqa: E731
            bench_llm = LLMBenchParser(data_dir, args.llm_budget, margin=args.llm_margin,
                                       mode=args.llm_mode, labelled=labelled,
                                       progress=say)  # fmt: skip
            chosen.append((LLM_KEY, LLM_LABEL, bench_llm))
        acc = run_accuracy(systems, parsers=chosen, progress=progress)
    speed: SpeedReport | None = None
    llm: LLMSpeed | None = None
    if not args.skip_speed:
        raw_files = sorted((data_dir / "raw").glob("*.log"))
        speed = run_speed(raw_files, load_formats(data_dir), n_runs, progress=progress)
        if LLM_KEY in keys:
            llm = run_llm_speed(data_dir, raw_files, args.llm_cold_start, n_runs, progress,
                                margin=args.llm_margin, mode=args.llm_mode)  # fmt: skip

    info = run_info(args.quick)
    print_tables(console, acc, speed, llm)
    if args.write_results:
        citation_file = data_dir / CORE_SET / "CITATION"
        citation = citation_file.read_text(encoding="utf-8") if citation_file.is_file() else None
        write_results(RESULTS_MD, render_markdown(info, acc, speed, citation, llm))
        progress.print(f"wrote {RESULTS_MD}")
    if args.json:
        print(json.dumps(to_json(info, acc, speed, llm), sort_keys=True))
    return 0


def _parser_keys() -> list[str]:
    return [*(k for k, _, _ in PARSERS), LLM_KEY]


def run_llm_speed(
    data_dir: Path,
    raw_files: Sequence[Path],
    cold_system: str,
    n_runs: int,
    progress: Console | None = None,
    *,
    margin: float | None = None,
    mode: str = "probe",
) -> LLMSpeed:
    """The LLM parser's cold start on ``cold_system``'s 2k file and warm runs on raw logs."""
    out = LLMSpeed()
    cold_file = data_dir / CORE_SET / cold_system / f"{cold_system}_2k.log"
    if progress is not None:
        progress.print(f"llm cold start: {cold_file.name}", highlight=False)
    out.cold.append(run_cold_start(cold_file, cold_system, margin=margin, mode=mode))
    for log_file in raw_files:
        if progress is not None:
            progress.print(f"llm warm speed: {log_file.name}", highlight=False)
        out.warm.append(
            run_warm_speed(log_file, preset_of(log_file), n_runs, margin=margin, mode=mode)
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
