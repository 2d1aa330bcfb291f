"""Helpers every benchmark shares, so each concept lives in one place.

Why a module of its own: each ``python -m benchmarks.NAME`` prints the same kind of tables,
records the same machine/date/commit, runs this checkout's CLI the same way and rewrites only
its own marked section of ``benchmarks/RESULTS.md``. Keeping those pieces here means a fix to
(say) how a failing command is summarised reaches every benchmark's table at once.
"""

from __future__ import annotations

import compileall
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from logpipe.datadir import shared_data_dir

__all__ = [
    "LOGHUB_CITATION",
    "REPO",
    "RESULTS_MD",
    "CommandResult",
    "RunInfo",
    "byte_compile_checkout",
    "cli_argv",
    "count_lines",
    "cpu_model",
    "default_data_dir",
    "env_with_repo",
    "failure_reason",
    "fmt",
    "fmt_rate",
    "fmt_ratio",
    "git_commit",
    "md_table",
    "read_citation",
    "replace_section",
    "rich_table",
    "run_command",
    "run_info",
    "startup_secs",
    "table_console",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
LOGHUB_CITATION = (
    "Jieming Zhu, Shilin He, Pinjia He, Jinyang Liu, Michael R. Lyu. Loghub: A Large Collection "
    "of System Log Datasets for AI-driven Log Analytics. ISSRE 2023."
)


# --- data ---------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$LOGPIPE_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    return shared_data_dir()


def count_lines(path: Path) -> int:
    """Lines as a reader sees them: a final line without its newline still counts."""
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def read_citation(data_dir: Path) -> str | None:
    """Loghub's BibTeX entry (``loghub-2k/CITATION``), to publish beside figures on its data."""
    path = data_dir / "loghub-2k" / "CITATION"
    return path.read_text(encoding="utf-8") if path.is_file() else None


# --- running this checkout's CLI ------------------------------------------------------------


def bibtex_block(citation: str | None) -> list[str]:
    """Markdown lines quoting a BibTeX citation (none when the data ships no CITATION)."""
    if not citation:
        return []
    bibtex = "\n".join(line.rstrip() for line in citation.strip().splitlines())
    return ["", "```bibtex", bibtex, "```"]


def env_with_repo() -> dict[str, str]:
    """The subprocess imports this checkout's ``logpipe``, not another installed copy."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def cli_argv() -> list[str]:
    """``python -m logpipe.cli`` through this interpreter: the command a benchmark times."""
    return [sys.executable, "-m", "logpipe.cli"]


def byte_compile_checkout() -> None:
    """Byte-compile our packages first, as installing a wheel does.

    With PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise be compiled from
    source in every timed run, while the baselines in site-packages were compiled at install.
    """
    for package in ("logpipe", "models", "connectors"):
        if (REPO / package).is_dir():
            compileall.compile_dir(str(REPO / package), quiet=1)


def failure_reason(returncode: int, stderr: str, stdout: str = "") -> str:
    """``exit N: <last non-empty line of stderr (else stdout)>``, short enough for a table."""
    lines = [ln.strip() for ln in (stderr or stdout).splitlines()]
    last = next((ln for ln in reversed(lines) if ln), "no output")
    return f"exit {returncode}: {last[:160]}"


@dataclass(frozen=True)
class CommandResult:
    """One timed subprocess: wall seconds and captured output, or why it failed."""

    secs: float
    stdout: bytes
    error: str | None


def run_command(
    argv: Sequence[str],
    timeout_secs: float = 600.0,
    stdout: IO[bytes] | None = None,
) -> CommandResult:
    """Run ``argv`` from the repo root with this checkout importable; time it; never raise.

    ``stdout`` may be an open file the command writes to instead of a pipe (so a big output
    is not held in memory). A non-zero exit, a timeout or a command that cannot start becomes
    a one-line ``error``: a benchmark records a failing tool in its table and goes on.
    """
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            list(argv),
            cwd=REPO,
            env=env_with_repo(),
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout_secs,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(timeout_secs, b"", f"timed out after {timeout_secs:.0f} s")
    except OSError as exc:
        return CommandResult(0.0, b"", f"cannot start {argv[0]}: {exc.strerror}")
    secs = time.perf_counter() - started
    out = proc.stdout if isinstance(proc.stdout, bytes) else b""
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        text = out.decode("utf-8", "replace")
        return CommandResult(secs, out, failure_reason(proc.returncode, err, text))
    return CommandResult(secs, out, None)


def startup_secs(argv: Sequence[str], n_runs: int) -> float | None:
    """Best wall time of a no-op invocation (interpreter start + imports); None if it fails."""
    best: float | None = None
    for _ in range(max(n_runs, 1)):
        result = run_command(argv, timeout_secs=120)
        if result.error is not None:
            return None
        best = result.secs if best is None else min(best, result.secs)
    return best


# --- formatting ----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def table_console() -> Console:
    """Piped output (make bench, --json | tail) gets wide tables instead of rich's 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def rich_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: Collection[str]
) -> Table:
    """A rich table; a row with a first cell starts a new section (one group per input)."""
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="left" if name in text_columns else "right")
    for row in rows:
        if row[0] and table.rows:
            table.add_section()
        table.add_row(*row)
    return table


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table as GitHub markdown (pipes in cells escaped)."""

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- where and when -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """Where and when the figures were taken; ``versions`` names the baselines' libraries."""

    date: str
    commit: str
    cpu: str
    cores: int
    python: str
    quick: bool
    versions: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Flat: the library versions sit beside the machine fields (``"drain3": "0.9.11"``)."""
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "versions"}
        out.update(self.versions)
        return out


def cpu_model() -> str:
    fallback = platform.processor() or platform.machine() or "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:  # not Linux: what platform knows
        return fallback
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return fallback


def git_commit() -> str:
    """Short HEAD of the checkout, ``-dirty`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def run_info(quick: bool, versions: dict[str, str] | None = None) -> RunInfo:
    return RunInfo(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=git_commit(),
        cpu=cpu_model(),
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        quick=quick,
        versions=dict(versions or {}),
    )


# --- RESULTS.md -----------------------------------------------------------------------------


def replace_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the ``begin``..``end`` section of ``path`` (append it when absent).

    Every other benchmark's section is kept byte for byte; the file is rewritten through a
    temp file and a rename, so an interrupted run never leaves half a results page.
    """
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
        if pattern.search(text):
            new = pattern.sub(lambda _: section, text, count=1)
        else:
            new = text.rstrip("\n") + "\n\n" + section
    else:
        new = "# Benchmark results\n\nRewritten by `make bench`; one section per benchmark.\n\n"
        new += section
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
