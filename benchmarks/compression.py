"""Compression benchmark: logpipe's archive beside gzip -6, xz -9e and zstd -19, plus grep.

Run ``python -m benchmarks.compression`` (``--quick`` for a small run, ``--json`` for one JSON
object of every figure as the last output line, ``--write-results`` to rewrite this
benchmark's section of ``benchmarks/RESULTS.md``, ``--data DIR`` for the shared corpora).

Why it is built this way:

* **Inputs** are each ``DATA/raw/*.log`` and one concatenation of every Loghub-2k
  ``*/*_2k.log`` (written to a temp file at run time, never into the repo), so the archive is
  judged both on large single-system slices and on a mix of 14 formats.
* **Baselines** run in this process through the libraries a user would reach for (``gzip``,
  ``lzma``, ``zstandard``), all in the same run as logpipe, so the ratios compare like with
  like on this machine. Each round trip is checked: a baseline that loses bytes is no
  yardstick.
* **logpipe** runs end to end through its command line, interpreter start included, because
  that is what a user waits for: ``logpipe compress IN -o OUT.lpz`` then ``logpipe decompress
  OUT.lpz -o BACK``, and BACK must equal IN byte for byte. The start-up cost is measured
  separately and printed. A failing command is recorded in the table, never a crash of the
  benchmark (the CLI may lag behind the harness).
* **Speeds** are megabytes (10^6 bytes) of *uncompressed* input per second in both directions,
  best of N runs, so compress and decompress figures are on one scale.
* **xz -9e is the headline yardstick** (issue 4): logpipe should reach 1.3x its ratio at 2x its
  compression speed and decompress at 20 MB/s or more. Every verdict is printed.
* **grep** searches a rare token picked by a fixed rule (:func:`pick_rare_token`), so no file
  needs a hand-chosen pattern: ``logpipe grep TOKEN OUT.lpz`` against decompressing the whole
  archive into ``grep -aF``. Both must find the same lines, else the speed-up is not reported.
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import json
import lzma
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from rich.console import Console

from benchmarks.common import (
    LOGHUB_CITATION,
    REPO,
    RESULTS_MD,
    CommandResult,
    RunInfo,
    bibtex_block,
    byte_compile_checkout,
    cli_argv,
    count_lines,
    default_data_dir,
    env_with_repo,
    failure_reason,
    fmt,
    fmt_ratio,
    md_table,
    read_citation,
    replace_section,
    rich_table,
    run_command,
    run_info,
    startup_secs,
    table_console,
)

__all__ = [
    "BASELINES",
    "BenchInput",
    "Codec",
    "CodecRun",
    "CompressionReport",
    "GrepRun",
    "InputReport",
    "build_inputs",
    "main",
    "measure_baseline",
    "measure_grep",
    "measure_logpipe",
    "pick_rare_token",
    "render_markdown",
    "run_benchmark",
    "to_json",
    "write_results",
]

OURS = "logpipe"
HEADLINE = "xz"
TARGET_RATIO_VS_XZ = 1.3
TARGET_COMPRESS_SPEED_VS_XZ = 2.0
TARGET_DECOMPRESS_MB_PER_SEC = 20.0
MB = 1_000_000
QUICK_LINES = 4000
RARE_MAX_LINES = 5
LOGHUB_SET = "loghub-2k"
CONCAT_NAME = "loghub-2k-all.log"
SECTION_BEGIN = "<!-- benchmark:compression:begin -->"
SECTION_END = "<!-- benchmark:compression:end -->"


# --- baselines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """A general-purpose compressor at a fixed setting, run in this process."""

    key: str
    label: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _zstd_compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=19).compress(data)


def _zstd_decompress(data: bytes) -> bytes:
    # The frame header records the content size, so one-shot decompression needs no hint.
    return zstandard.ZstdDecompressor().decompress(data)


def _xz_compress(data: bytes) -> bytes:
    return lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)


def _gzip_compress(data: bytes) -> bytes:
    return gzip.compress(data, 6)


BASELINES: tuple[Codec, ...] = (
    Codec("gzip", "gzip -6", _gzip_compress, gzip.decompress),
    Codec("xz", "xz -9e", _xz_compress, lzma.decompress),
    Codec("zstd", "zstd -19", _zstd_compress, _zstd_decompress),
)
LABELS: dict[str, str] = {c.key: c.label for c in BASELINES} | {OURS: OURS}
TOOLS: tuple[str, ...] = (*(c.key for c in BASELINES), OURS)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchInput:
    """One file the tools compress; ``name`` is what the tables call it."""

    name: str
    path: Path
    size_bytes: int
    lines: int


def _mb_per_sec(n_bytes: int, secs: list[float]) -> float | None:
    best = min(secs) if secs else None
    return n_bytes / MB / best if best else None


@dataclass(frozen=True)
class CodecRun:
    """One tool on one input: sizes, every timed run, the round-trip check, or the failure."""

    tool: str
    input_bytes: int
    output_bytes: int | None = None
    compress_secs: list[float] = field(default_factory=list)
    decompress_secs: list[float] = field(default_factory=list)
    round_trip_ok: bool | None = None  # None: never got as far as checking
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.round_trip_ok is True

    @property
    def ratio(self) -> float | None:
        """Input bytes over output bytes; only for a run that round-tripped."""
        return self.input_bytes / self.output_bytes if self.ok and self.output_bytes else None

    @property
    def compress_mb_per_sec(self) -> float | None:
        return _mb_per_sec(self.input_bytes, self.compress_secs) if self.ok else None

    @property
    def decompress_mb_per_sec(self) -> float | None:
        return _mb_per_sec(self.input_bytes, self.decompress_secs) if self.ok else None


@dataclass(frozen=True)
class GrepRun:
    """``logpipe grep TOKEN`` against decompress-and-grep on one archive."""

    token: str | None
    expected_lines: int  # lines of the input containing the token, counted in Python
    logpipe_secs: list[float] = field(default_factory=list)
    logpipe_lines: int | None = None
    baseline_secs: list[float] = field(default_factory=list)
    baseline_lines: int | None = None
    same_lines: bool | None = None  # the very same line bytes in the same order
    error: str | None = None

    @property
    def logpipe_best_secs(self) -> float | None:
        return min(self.logpipe_secs) if self.logpipe_secs else None

    @property
    def baseline_best_secs(self) -> float | None:
        return min(self.baseline_secs) if self.baseline_secs else None

    @property
    def speedup(self) -> float | None:
        """Decompress-and-grep time over logpipe grep time, when both found the same lines."""
        a, b = self.logpipe_best_secs, self.baseline_best_secs
        return b / a if self.error is None and a and b else None


@dataclass
class InputReport:
    """Every tool's run on one input, and the grep comparison."""

    input: BenchInput
    runs: dict[str, CodecRun] = field(default_factory=dict)
    grep: GrepRun | None = None

    def versus(self, baseline: str) -> dict[str, float | None]:
        """logpipe over ``baseline``: ratio / ratio and speed / speed (None where undefined)."""
        ours, base = self.runs.get(OURS), self.runs.get(baseline)

        def div(a: float | None, b: float | None) -> float | None:
            return a / b if a is not None and b else None

        if ours is None or base is None:
            return {"ratio": None, "compress_speed": None, "decompress_speed": None}
        return {
            "ratio": div(ours.ratio, base.ratio),
            "compress_speed": div(ours.compress_mb_per_sec, base.compress_mb_per_sec),
            "decompress_speed": div(ours.decompress_mb_per_sec, base.decompress_mb_per_sec),
        }

    def targets_met(self) -> dict[str, bool | None]:
        """Issue 4's acceptance figures against xz -9e; None when logpipe has no figure."""
        vs = self.versus(HEADLINE)
        ours = self.runs.get(OURS)
        dec = ours.decompress_mb_per_sec if ours else None
        return {
            "ratio_vs_xz": None if vs["ratio"] is None else vs["ratio"] >= TARGET_RATIO_VS_XZ,
            "compress_speed_vs_xz": None
            if vs["compress_speed"] is None
            else vs["compress_speed"] >= TARGET_COMPRESS_SPEED_VS_XZ,
            "decompress_mb_per_sec": None if dec is None else dec >= TARGET_DECOMPRESS_MB_PER_SEC,
        }


@dataclass
class CompressionReport:
    inputs: list[InputReport] = field(default_factory=list)
    startup_secs: float | None = None  # logpipe CLI interpreter start + imports


# --- inputs --------------------------------------------------------------------------------


def _head_lines(data: bytes, n_lines: int) -> bytes:
    """The first ``n_lines`` lines, endings kept."""
    end = 0
    for _ in range(n_lines):
        nl = data.find(b"\n", end)
        if nl < 0:
            return data
        end = nl + 1
    return data[:end]


def build_inputs(data_dir: Path, workdir: Path, quick_lines: int | None = None) -> list[BenchInput]:
    """Each ``raw/*.log`` and the Loghub-2k concatenation (built in ``workdir``).

    The concatenation puts a newline between files that lack a final one, so no two systems'
    lines fuse. With ``quick_lines`` every input is cut to its first lines (copies in
    ``workdir``); the shared files themselves are only read.
    """
    sources: list[tuple[str, Path]] = [
        (p.name, p) for p in sorted((data_dir / "raw").glob("*.log"))
    ]
    parts = sorted((data_dir / LOGHUB_SET).glob("*/*_2k.log"))
    if parts:
        concat = workdir / CONCAT_NAME
        with concat.open("wb") as out:
            for part in parts:
                chunk = part.read_bytes()
                out.write(chunk)
                if chunk and not chunk.endswith(b"\n"):
                    out.write(b"\n")
        sources.append((CONCAT_NAME, concat))
    inputs: list[BenchInput] = []
    for name, src in sources:
        path = src
        if quick_lines is not None:
            path = workdir / f"quick-{name}"
            path.write_bytes(_head_lines(src.read_bytes(), quick_lines))
        inputs.append(BenchInput(name, path, path.stat().st_size, count_lines(path)))
    return inputs


# --- measuring -----------------------------------------------------------------------------


def measure_baseline(codec: Codec, data: bytes, n_runs: int) -> CodecRun:
    """Best-of-``n_runs`` in-process timings; every decompressed copy is compared to ``data``."""
    compressed = b""
    comp_secs: list[float] = []
    for _ in range(n_runs):
        started = time.perf_counter()
        compressed = codec.compress(data)
        comp_secs.append(time.perf_counter() - started)
    dec_secs: list[float] = []
    round_trip_ok = True
    for _ in range(n_runs):
        started = time.perf_counter()
        back = codec.decompress(compressed)
        dec_secs.append(time.perf_counter() - started)
        round_trip_ok = round_trip_ok and back == data
    error = None if round_trip_ok else "round trip differs from the input"
    return CodecRun(
        codec.key, len(data), len(compressed), comp_secs, dec_secs, round_trip_ok, error
    )


def measure_logpipe(
    inp: BenchInput, workdir: Path, n_runs: int, cli: Sequence[str] | None = None
) -> tuple[CodecRun, Path | None]:
    """``compress IN -o OUT.lpz`` and ``decompress OUT.lpz -o BACK``, end to end, best of N.

    Returns the run and the archive of the last compression (for grep), or None when
    compressing failed. ``cli`` is the command prefix (``python -m logpipe.cli`` by default),
    injectable so the plumbing can be tested without the real command.
    """
    base = list(cli) if cli is not None else cli_argv()
    archive: Path | None = None
    comp_secs: list[float] = []
    for i in range(n_runs):
        out = workdir / f"{inp.name}.{i}.lpz"
        result = run_command([*base, "compress", str(inp.path), "-o", str(out)])
        if result.error is None and not out.is_file():
            result = CommandResult(result.secs, result.stdout, f"exit 0 but no {out.name} written")
        if result.error is not None:
            return CodecRun(OURS, inp.size_bytes, error=f"compress: {result.error}"), None
        comp_secs.append(result.secs)
        if archive is not None:
            archive.unlink()
        archive = out
    assert archive is not None  # n_runs >= 1
    output_bytes = archive.stat().st_size
    dec_secs: list[float] = []
    for i in range(n_runs):
        back = workdir / f"{inp.name}.{i}.back"
        result = run_command([*base, "decompress", str(archive), "-o", str(back)])
        if result.error is None and not back.is_file():
            result = CommandResult(result.secs, result.stdout, f"exit 0 but no {back.name} written")
        if result.error is not None:
            error = f"decompress: {result.error}"
            return CodecRun(OURS, inp.size_bytes, output_bytes, comp_secs, error=error), archive
        same = filecmp.cmp(inp.path, back, shallow=False)
        back.unlink()
        if not same:
            error = "decompress: output differs from the input"
            return CodecRun(
                OURS, inp.size_bytes, output_bytes, comp_secs, [], False, error
            ), archive
        dec_secs.append(result.secs)
    return CodecRun(OURS, inp.size_bytes, output_bytes, comp_secs, dec_secs, True), archive


def _lines(data: bytes) -> list[bytes]:
    """``\\n``-separated lines as grep sees them (a ``\\r`` stays part of its line)."""
    if not data:
        return []
    return data[:-1].split(b"\n") if data.endswith(b"\n") else data.split(b"\n")


# A token is a run of letters, digits, "_" and "-", starting with a letter or digit: no
# character is special in a regular expression or a shell word, and none starts an option,
# so a fixed-string grep, a regex grep and a word search all mean the same thing.
_TOKEN = re.compile(rb"[A-Za-z0-9][A-Za-z0-9_-]{5,}")
_LETTER = re.compile(rb"[A-Za-z]")


def pick_rare_token(data: bytes) -> tuple[str, int] | None:
    """A rare token of ``data`` by a fixed rule, and the number of lines containing it.

    Rule: among tokens (see ``_TOKEN``; at least 6 characters, at least one letter) found in
    1 to ``RARE_MAX_LINES`` lines, where every occurrence is a whole token (so substring and
    word search agree), take the one in the most lines, ties to the byte-wise smallest.
    Lines are ``\\n``-separated, as grep sees them. None if no token qualifies.
    """
    lines = _lines(data)
    counts: Counter[bytes] = Counter()
    for line in lines:
        counts.update(set(_TOKEN.findall(line)))
    candidates = sorted(
        (t for t, n in counts.items() if n <= RARE_MAX_LINES and _LETTER.search(t)),
        key=lambda t: (-counts[t], t),
    )
    for token in candidates:
        n_lines = sum(1 for line in lines if token in line)
        if n_lines == counts[token]:
            return token.decode("ascii"), n_lines
    return None


def _decompress_and_grep(
    decompress: Sequence[str], token: str, timeout_secs: float = 600.0
) -> CommandResult:
    """``decompress | grep -aF -- TOKEN`` timed as one; a failing decompress is reported.

    Two processes joined by a pipe rather than ``sh -c``, because POSIX sh has no pipefail:
    a failing decompress would look like grep finding nothing. ``-a`` keeps grep printing
    lines (not "Binary file matches") should a log hold a NUL byte.
    """
    producer, consumer = list(decompress), ["grep", "-a", "-F", "--", token]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as producer_err:
        try:
            with subprocess.Popen(
                producer,
                cwd=REPO,
                env=env_with_repo(),
                stdout=subprocess.PIPE,
                stderr=producer_err,
            ) as prod:
                assert prod.stdout is not None
                with subprocess.Popen(
                    consumer,
                    stdin=prod.stdout,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                ) as cons:
                    prod.stdout.close()  # the consumer owns the read end now
                    try:
                        out, err = cons.communicate(timeout=timeout_secs)
                        prod.wait(timeout=timeout_secs)
                    except subprocess.TimeoutExpired:
                        cons.kill()
                        prod.kill()
                        return CommandResult(
                            timeout_secs, b"", f"timed out after {timeout_secs:.0f} s"
                        )
        except OSError as exc:
            return CommandResult(0.0, b"", f"cannot start: {exc.strerror}")
        secs = time.perf_counter() - started
        if prod.returncode != 0:
            producer_err.seek(0)
            text = producer_err.read().decode("utf-8", "replace")
            return CommandResult(secs, out, f"decompress: {failure_reason(prod.returncode, text)}")
    if cons.returncode > 1:  # grep: 1 means no line selected, 2+ an error
        return CommandResult(secs, out, f"grep: {failure_reason(cons.returncode, err.decode())}")
    return CommandResult(secs, out, None)


def measure_grep(
    inp: BenchInput, archive: Path, n_runs: int, cli: Sequence[str] | None = None
) -> GrepRun:
    """Time ``logpipe grep TOKEN OUT.lpz`` against ``logpipe decompress OUT.lpz -o - | grep``.

    Both must print the same number of lines, and decompress+grep exactly the input's lines
    holding the token; otherwise the run carries an error and no speed-up.
    """
    base = list(cli) if cli is not None else cli_argv()
    data = inp.path.read_bytes()
    picked = pick_rare_token(data)
    if picked is None:
        return GrepRun(None, 0, error="no rare token in this input")
    token, expected = picked
    needle = token.encode("ascii")
    want = [line for line in _lines(data) if needle in line]
    ours_secs: list[float] = []
    ours_out = b""
    for _ in range(n_runs):
        result = run_command([*base, "grep", token, str(archive)])
        if result.error is not None:
            return GrepRun(token, expected, error=f"logpipe grep: {result.error}")
        ours_secs.append(result.secs)
        ours_out = result.stdout
    base_secs: list[float] = []
    base_out = b""
    for _ in range(n_runs):
        result = _decompress_and_grep([*base, "decompress", str(archive), "-o", "-"], token)
        if result.error is not None:
            return GrepRun(token, expected, ours_secs, len(_lines(ours_out)), error=result.error)
        base_secs.append(result.secs)
        base_out = result.stdout
    ours_lines, base_lines = _lines(ours_out), _lines(base_out)
    error = None
    if len(ours_lines) != len(base_lines):
        error = f"logpipe grep found {len(ours_lines)} lines, decompress+grep {len(base_lines)}"
    elif base_lines != want:
        error = f"decompress+grep lines differ from the input's ({len(base_lines)}, {expected})"
    same = ours_lines == base_lines
    return GrepRun(
        token, expected, ours_secs, len(ours_lines), base_secs, len(base_lines), same, error
    )


def run_benchmark(
    inputs: Sequence[BenchInput],
    n_runs: int,
    workdir: Path,
    cli: Sequence[str] | None = None,
    progress: Console | None = None,
) -> CompressionReport:
    """Every baseline and logpipe on every input, then grep; all in this one run."""
    report = CompressionReport()
    if cli is None:
        byte_compile_checkout()
    report.startup_secs = startup_secs([*(cli or cli_argv()), "--version"], n_runs)
    for inp in inputs:
        entry = InputReport(inp)
        data = inp.path.read_bytes()
        for codec in BASELINES:
            if progress is not None:
                progress.print(f"compression: {inp.name} / {codec.label}", highlight=False)
            entry.runs[codec.key] = measure_baseline(codec, data, n_runs)
        del data
        if progress is not None:
            progress.print(f"compression: {inp.name} / {OURS}", highlight=False)
        entry.runs[OURS], archive = measure_logpipe(inp, workdir, n_runs, cli)
        if archive is not None and entry.runs[OURS].error is None:
            if progress is not None:
                progress.print(f"grep: {inp.name}", highlight=False)
            entry.grep = measure_grep(inp, archive, n_runs, cli)
        elif archive is None:
            entry.grep = GrepRun(None, 0, error="no archive (logpipe compress failed)")
        else:
            entry.grep = GrepRun(None, 0, error="archive does not round-trip")
        if archive is not None:
            archive.unlink()
        report.inputs.append(entry)
    return report


# --- output -------------------------------------------------------------------------------


def _fmt_bool(value: bool | None, yes: str = "yes", no: str = "NO") -> str:
    return "n/a" if value is None else (yes if value else no)


def _run_status(run: CodecRun) -> str:
    return "ok" if run.error is None else run.error


def _compression_rows(report: CompressionReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for entry in report.inputs:
        inp = entry.input
        for i, tool in enumerate(TOOLS):
            run = entry.runs.get(tool)
            if run is None:
                continue
            rows.append(
                [
                    inp.name if i == 0 else "",
                    f"{inp.size_bytes / MB:.2f}" if i == 0 else "",
                    LABELS[tool],
                    fmt(run.ratio, 2),
                    fmt(run.compress_mb_per_sec, 2),
                    fmt(run.decompress_mb_per_sec, 2),
                    _fmt_bool(run.round_trip_ok, "ok", "DIFFERS"),
                    _run_status(run),
                ]
            )
        for codec in BASELINES:
            vs = entry.versus(codec.key)
            rows.append(
                [
                    "",
                    "",
                    f"logpipe / {codec.label}",
                    fmt_ratio(vs["ratio"]),
                    fmt_ratio(vs["compress_speed"]),
                    fmt_ratio(vs["decompress_speed"]),
                    "",
                    "",
                ]
            )
    return rows


def _grep_rows(report: CompressionReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for entry in report.inputs:
        g = entry.grep
        if g is None:
            continue
        rows.append(
            [
                entry.input.name,
                g.token or "n/a",
                str(g.expected_lines) if g.token else "n/a",
                fmt(g.logpipe_best_secs, 3),
                fmt(g.baseline_best_secs, 3),
                fmt_ratio(g.speedup),
                _fmt_bool(g.same_lines),
                "ok" if g.error is None else g.error,
            ]
        )
    return rows


COMPRESSION_HEADER = [
    "input",
    "MB",
    "tool",
    "ratio",
    "compress MB/s",
    "decompress MB/s",
    "round trip",
    "status",
]
GREP_HEADER = [
    "input",
    "token",
    "lines",
    "logpipe grep s",
    "decompress+grep s",
    "speed-up",
    "same lines",
    "status",
]
_TEXT_COLUMNS = {"input", "tool", "token", "round trip", "same lines", "status", ""}


def _verdicts(report: CompressionReport) -> list[str]:
    """One line per input: logpipe against issue 4's targets, xz -9e as the yardstick."""
    out: list[str] = []
    for entry in report.inputs:
        vs = entry.versus(HEADLINE)
        met = entry.targets_met()
        ours = entry.runs.get(OURS)
        dec = ours.decompress_mb_per_sec if ours else None
        out.append(
            f"{entry.input.name}: ratio {fmt_ratio(vs['ratio'])} xz -9e's "
            f"(>= {TARGET_RATIO_VS_XZ}x: {_fmt_bool(met['ratio_vs_xz'])}); "
            f"compress speed {fmt_ratio(vs['compress_speed'])} xz -9e's "
            f"(>= {TARGET_COMPRESS_SPEED_VS_XZ:g}x: {_fmt_bool(met['compress_speed_vs_xz'])}); "
            f"decompress {fmt(dec, 1)} MB/s "
            f"(>= {TARGET_DECOMPRESS_MB_PER_SEC:g}: {_fmt_bool(met['decompress_mb_per_sec'])})"
        )
    return out


def print_tables(console: Console, report: CompressionReport) -> None:
    """The human-readable tables (the markdown has the same ones)."""
    console.print(
        rich_table(
            "Compression (MB/s of uncompressed input, best of runs)",
            COMPRESSION_HEADER,
            _compression_rows(report),
            _TEXT_COLUMNS,
        )
    )
    for line in _verdicts(report):
        console.print(line, highlight=False)
    console.print(
        rich_table("grep for a rare token", GREP_HEADER, _grep_rows(report), _TEXT_COLUMNS)
    )
    console.print(
        f"logpipe CLI start + imports (included in every logpipe time): "
        f"{fmt(report.startup_secs, 3)} s",
        highlight=False,
    )


def compression_run_info(quick: bool) -> RunInfo:
    """Machine, date, commit and the versions of the libraries behind the baselines."""
    return run_info(
        quick,
        {
            "zstandard": zstandard.__version__,
            "libzstd": ".".join(str(v) for v in zstandard.ZSTD_VERSION),
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        },
    )


def render_markdown(info: RunInfo, report: CompressionReport, citation: str | None = None) -> str:
    """This benchmark's section of RESULTS.md, between its begin/end markers."""
    v = info.versions
    inputs = ", ".join(f"`{e.input.name}`" for e in report.inputs)
    parts = [
        SECTION_BEGIN,
        "## Compression: logpipe archive beside gzip, xz and zstd; grep on the archive",
        "",
        f"Produced by `python -m benchmarks.compression{' --quick' if info.quick else ''}` "
        f"on {info.date}, commit `{info.commit}`; machine: {info.cpu}, {info.cores} cores; "
        f"Python {info.python}, zstandard {v.get('zstandard')} (libzstd {v.get('libzstd')}), "
        f"zlib {v.get('zlib')}.",
        "",
        f"Inputs: {inputs} (`{CONCAT_NAME}` is every Loghub-2k `*_2k.log` concatenated). "
        "Ratio = input bytes / output bytes. Speeds are MB (10^6 bytes) of uncompressed input "
        "per second, best of the runs, in both directions. Baselines run in-process "
        "(`gzip.compress(data, 6)`, `lzma.compress(data, preset=9 | PRESET_EXTREME)`, "
        "`zstandard.ZstdCompressor(level=19)`); logpipe runs end to end through its CLI "
        "(`logpipe compress IN -o OUT.lpz`, `logpipe decompress OUT.lpz -o BACK`), interpreter "
        f"start included ({fmt(report.startup_secs, 3)} s per command). Every round trip is "
        "compared byte for byte with the input.",
        "",
        md_table(COMPRESSION_HEADER, _compression_rows(report)),
        "",
        f"Targets (issue 4), xz -9e as the yardstick: ratio >= {TARGET_RATIO_VS_XZ}x xz's, "
        f"compression speed >= {TARGET_COMPRESS_SPEED_VS_XZ:g}x xz's, decompression >= "
        f"{TARGET_DECOMPRESS_MB_PER_SEC:g} MB/s.",
        "",
        *[f"- {line}" for line in _verdicts(report)],
        "",
        "### grep",
        "",
        "`logpipe grep TOKEN OUT.lpz` against `logpipe decompress OUT.lpz -o - | grep -aF TOKEN`, "
        "best of the runs. The token is picked by a fixed rule (the token of 6+ letters, digits, "
        f"`_` or `-`, with a letter, found whole in the most lines among those in 1 to "
        f"{RARE_MAX_LINES} lines; ties to the smallest), so nothing is chosen by hand. "
        "Both must print the same lines.",
        "",
        md_table(GREP_HEADER, _grep_rows(report)),
        "",
        "### Data",
        "",
        f"Data: Loghub, {LOGHUB_CITATION}",
    ]
    parts += bibtex_block(citation)
    parts.append(SECTION_END)
    return "\n".join(parts) + "\n"


def write_results(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (other benchmarks' sections are kept)."""
    replace_section(path, section, SECTION_BEGIN, SECTION_END)


def _run_json(run: CodecRun, startup: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": LABELS[run.tool],
        "input_bytes": run.input_bytes,
        "output_bytes": run.output_bytes,
        "ratio": run.ratio,
        "compress_mb_per_sec": run.compress_mb_per_sec,
        "decompress_mb_per_sec": run.decompress_mb_per_sec,
        "compress_secs": run.compress_secs,
        "decompress_secs": run.decompress_secs,
        "round_trip_ok": run.round_trip_ok,
        "error": run.error,
    }
    if run.tool == OURS:
        # What the archive code itself achieves once the interpreter is up (for context only;
        # the headline figures above include start-up, as a user's wait does).
        for direction in ("compress", "decompress"):
            secs = run.compress_secs if direction == "compress" else run.decompress_secs
            best = min(secs) if secs and run.ok else None
            net = best - startup if best is not None and startup is not None else None
            rate = run.input_bytes / MB / net if net is not None and net > 0 else None
            out[f"{direction}_mb_per_sec_excl_startup"] = rate
    return out


def to_json(info: RunInfo, report: CompressionReport) -> dict[str, Any]:
    """Every figure in one JSON-ready object, units in the key names."""
    inputs: dict[str, Any] = {}
    for entry in report.inputs:
        g = entry.grep
        inputs[entry.input.name] = {
            "input_bytes": entry.input.size_bytes,
            "lines": entry.input.lines,
            "tools": {t: _run_json(r, report.startup_secs) for t, r in entry.runs.items()},
            "logpipe_over": {c.key: entry.versus(c.key) for c in BASELINES},
            "targets_met": entry.targets_met(),
            "grep": None
            if g is None
            else {
                "token": g.token,
                "expected_lines": g.expected_lines,
                "logpipe_lines": g.logpipe_lines,
                "baseline_lines": g.baseline_lines,
                "same_lines": g.same_lines,
                "logpipe_best_secs": g.logpipe_best_secs,
                "baseline_best_secs": g.baseline_best_secs,
                "logpipe_secs": g.logpipe_secs,
                "baseline_secs": g.baseline_secs,
                "speedup": g.speedup,
                "error": g.error,
            },
        }
    return {
        "benchmark": "compression",
        **info.as_json(),
        "mb_bytes": MB,
        "headline_baseline": HEADLINE,
        "targets": {
            "ratio_vs_xz": TARGET_RATIO_VS_XZ,
            "compress_speed_vs_xz": TARGET_COMPRESS_SPEED_VS_XZ,
            "decompress_mb_per_sec": TARGET_DECOMPRESS_MB_PER_SEC,
        },
        "logpipe_startup_secs": report.startup_secs,
        "inputs": inputs,
    }


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None, cli: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 ok, 1 no data, 2 usage. ``cli`` replaces ``python -m logpipe.cli``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help=f"First {QUICK_LINES} lines of each input, 1 run."
    )
    parser.add_argument("--json", action="store_true", help="Last output line: one JSON object.")
    parser.add_argument("--write-results", action="store_true", help="Rewrite RESULTS.md.")
    parser.add_argument("--data", type=Path, default=None, help="Shared data directory.")
    parser.add_argument("--runs", type=int, default=None, help="Runs per measurement (3; quick 1).")
    args = parser.parse_args(argv)
    if args.quick and args.write_results:
        parser.error("--write-results records full runs only; drop --quick")
    n_runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if n_runs < 1:
        parser.error("--runs must be at least 1")

    data_dir = (args.data or default_data_dir()).resolve()
    console = table_console()
    progress = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="logpipe-cbench-") as tmp:
        inputs = build_inputs(data_dir, Path(tmp), QUICK_LINES if args.quick else None)
        if not inputs:
            progress.print(
                f"benchmarks.compression: error: no raw/*.log or {LOGHUB_SET} under {data_dir}; "
                "pass --data"
            )
            return 1
        report = run_benchmark(inputs, n_runs, Path(tmp), cli=cli, progress=progress)

    info = compression_run_info(args.quick)
    print_tables(console, report)
    if args.write_results:
        write_results(RESULTS_MD, render_markdown(info, report, read_citation(data_dir)))
        progress.print(f"wrote {RESULTS_MD}")
    if args.json:
        print(json.dumps(to_json(info, report), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
