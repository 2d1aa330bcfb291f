"""The hybrid LLM parser's part of the parsing benchmark (``--parsers ...,llm``).

* **Accuracy, leave-one-system-out.** Each system is parsed by a fresh parser (an empty
  cache: every system is a cold start). Its demonstrations are the shipped
  ``demos.jsonl`` plus labelled pairs of the *other* systems' Loghub-2k files (read by path,
  one line per template, the first ``DEMOS_PER_SYSTEM`` templates of each file); no line,
  template or cache entry of the scored system is used. The model-call budget is off here
  by default (``--llm-budget``), so every group a cache hit does not settle is asked about:
  the rows measure what the model does. Besides GA/PA/FGA/FTA, each system reports model
  calls per 1,000 lines, the cache hit rate (groups the cache settled / groups), what the
  checker did with the answers, and lines/s (mining and model, in process).
* **Cold start**: ``logpipe parse <Sys>_2k.log --preset Sys --parser llm`` through the CLI
  with its default budget, interpreter start and model load included.
* **Warm speed**: the same command on each raw log with ``--state-in`` a state left by a
  warm-up pass over that file (unlimited budget, so nothing is left provisional), timed
  with the default budget; model calls of the timed run are reported (0 when warm).
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from logpipe.models.llm_parser.train_probe import LabelledSystem, ProbeRows, collect, train

from benchmarks.common import cli_argv, count_lines, run_command
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import Demonstration, TemplateBackend, make_backend

__all__ = [
    "DEMOS_PER_SYSTEM",
    "ColdStart",
    "LLMBenchParser",
    "WarmRun",
    "loso_demonstrations",
    "run_cold_start",
    "run_warm_speed",
]

DEMOS_PER_SYSTEM = 12
COLD_START_TARGET_SECS = 120.0
WARM_TARGET_LINES_PER_SEC = 10_000.0


def _labelled_pairs(path: Path, limit: int) -> list[Demonstration]:
    """One (line, template) per template of a Loghub structured file, the first ``limit``."""
    out: list[Demonstration] = []
    seen: set[str] = set()
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            template = row.get("EventTemplate") or ""
            if template and template not in seen:
                seen.add(template)
                out.append(Demonstration(row["Content"], template))
                if len(out) >= limit:
                    break
    return out


def loso_demonstrations(
    data_dir: Path, exclude: str, core_set: str = "loghub-2k"
) -> list[Demonstration]:
    """Labelled pairs of every ``core_set`` system except ``exclude`` (leave-one-out)."""
    out: list[Demonstration] = []
    base = data_dir / core_set
    for sys_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        if sys_dir.name == exclude:
            continue
        path = sys_dir / f"{sys_dir.name}_2k.log_structured_corrected.csv"
        if path.is_file():
            out.extend(_labelled_pairs(path, DEMOS_PER_SYSTEM))
    return out


@dataclass
class LLMBenchParser:
    """The LLM parser as a benchmark parser: ``parse_system`` gives it the system's name
    (to leave its data out); ``last_extra`` holds the figures of the latest run.

    ``mode`` is the local model's (:data:`~logpipe.parsing.llm_backends.LOCAL_MODES`; a
    ``margin`` selects ``score``). In ``probe`` mode the head is trained per scored system
    on the *other* ``labelled`` systems (features of all of them collected once), its
    threshold chosen leave-one-system-out among those others: the shipped head, which has
    seen every system, is never used for accuracy.
    """

    data_dir: Path
    budget: float = 0.0
    backend: TemplateBackend | None = None
    margin: float | None = None  # the local model's score-mode margin
    mode: str = "probe"
    labelled: Sequence[LabelledSystem] = ()
    progress: Callable[[str], None] | None = None
    last_extra: dict[str, float] = field(default_factory=dict)
    last_threshold: float | None = None  # the probe head's, for the latest system
    _rows: dict[str, ProbeRows] = field(default_factory=dict)
    _model: Any = None

    def _backend(self, name: str) -> TemplateBackend | None:
        if self.backend is None and self.margin is None and self.mode == "probe":
            return self._probe_backend(name)
        if self.backend is None:
            self.backend = make_backend("local", local_mode=self.mode, local_margin=self.margin)
        return self.backend

    def _probe_backend(self, name: str) -> TemplateBackend:
        from logpipe.models.llm_parser.local import LocalBackend
        from logpipe.models.nl2logql.loader import load_base_model

        if self._model is None:
            self._model = load_base_model()
        model, tok = self._model.model, self._model.tokenizer
        for system in self.labelled:
            if system.name not in self._rows:
                if self.progress is not None:
                    self.progress(f"llm probe: features of {system.name}")
                self._rows[system.name] = collect(model, tok, system)
        others = [rows for n, rows in self._rows.items() if n != name]
        probe = train(others, progress=self.progress)
        self.last_threshold = probe.threshold
        backend: TemplateBackend = LocalBackend(model, tok, mode="probe", probe=probe)
        return backend

    def parse_system(self, name: str, contents: Sequence[str]) -> list[str]:
        """Parse ``contents`` of system ``name`` cold, with leave-one-out demonstrations."""
        from logpipe.models.llm_parser.demos import load_demonstrations

        demos = [*load_demonstrations(), *loso_demonstrations(self.data_dir, name)]
        parser = LLMParser(self._backend(name), demos=demos,
                           config=LLMParserConfig(max_calls_per_second=self.budget))  # fmt: skip
        started = time.perf_counter()
        text = pa.array(list(contents), pa.string())
        templates, _ = parser.line_templates(parser.add_batch(text), text)
        secs = time.perf_counter() - started
        stats = parser.stats
        n = max(len(contents), 1)
        self.last_extra = {
            **{k: float(v) for k, v in asdict(stats).items()},
            "calls_per_1k_lines": 1000.0 * stats.model_calls / n,
            "cache_hit_rate": stats.cache_hits / stats.groups if stats.groups else 0.0,
            "lines_per_sec": n / secs if secs > 0 else 0.0,
            "demonstrations": float(len(demos)),
            **({} if self.last_threshold is None else {"probe_threshold": self.last_threshold}),
        }
        return [t or "" for t in templates.to_pylist()]

    def __call__(self, contents: Sequence[str]) -> list[str]:
        return self.parse_system("", contents)


@dataclass(frozen=True)
class ColdStart:
    """One cold CLI run: the system, its lines, wall seconds, model calls, or the failure."""

    system: str
    lines: int
    secs: float | None
    model_calls: int | None
    error: str | None = None


def _llm_summary(stdout: bytes) -> dict[str, Any]:
    lines = [ln for ln in stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return summary


def _parse_argv(
    log_file: Path, preset: str, out: Path, margin: float | None, mode: str, *extra: str
) -> list[str]:
    with_margin = ["--llm-local-mode", mode]
    with_margin += [] if margin is None else ["--llm-local-margin", str(margin)]
    return [*cli_argv(), "parse", str(log_file), "--preset", preset, "--parser", "llm",
            "--out", str(out), "--json", "--no-progress", *with_margin, *extra]  # fmt: skip


def run_cold_start(
    log_file: Path, preset: str, timeout_secs: float = 600.0, margin: float | None = None,
    mode: str = "probe",
) -> ColdStart:  # fmt: skip
    """``logpipe parse FILE --parser llm`` with no state and the default budget."""
    lines = count_lines(log_file)
    with tempfile.TemporaryDirectory(prefix="logpipe-bench-") as tmp:
        argv = _parse_argv(log_file, preset, Path(tmp) / "out", margin, mode)
        result = run_command(argv, timeout_secs)
    if result.error is not None:
        return ColdStart(preset, lines, None, None, result.error)
    calls = (_llm_summary(result.stdout).get("llm") or {}).get("model_calls")
    return ColdStart(preset, lines, result.secs, calls)


@dataclass(frozen=True)
class WarmRun:
    """The timed warm run on one raw file."""

    file: str
    lines: int
    secs: float | None
    model_calls: int | None
    warmup_secs: float | None
    error: str | None = None

    @property
    def lines_per_sec(self) -> float | None:
        return self.lines / self.secs if self.secs else None


def run_warm_speed(
    log_file: Path, preset: str, n_runs: int, margin: float | None = None, mode: str = "probe"
) -> WarmRun:
    """Warm up a state on ``log_file`` (unlimited budget), then time runs that resume it."""
    lines = count_lines(log_file)
    with tempfile.TemporaryDirectory(prefix="logpipe-bench-") as tmp:
        state = Path(tmp) / "state.json"
        warm = run_command(_parse_argv(log_file, preset, Path(tmp) / "w", margin, mode,
                                       "--state-out",
                                       str(state), "--llm-max-calls-per-second", "0"),
                           timeout_secs=1800.0)  # fmt: skip
        if warm.error is not None:
            return WarmRun(log_file.name, lines, None, None, None, f"warm-up: {warm.error}")
        best: float | None = None
        calls: int | None = None
        for i in range(n_runs):
            out = Path(tmp) / f"r{i}"
            argv = _parse_argv(log_file, preset, out, margin, mode, "--state-in", str(state))
            result = run_command(argv)
            if result.error is not None:
                return WarmRun(log_file.name, lines, None, None, warm.secs, result.error)
            calls = (_llm_summary(result.stdout).get("llm") or {}).get("model_calls")
            best = result.secs if best is None else min(best, result.secs)
    return WarmRun(log_file.name, lines, best, calls, warm.secs)
