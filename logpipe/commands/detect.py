"""``logpipe detect train|score``: fit GLAD on normal logs, then score new logs with it.

Both commands cut logs into windows the same way (the recipe is saved in the model
directory, :mod:`logpipe.detect.modeldir`), so a model scores exactly what it was trained
on. Torch and the model are imported only when a command runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from logpipe.errors import UsageError

__all__ = ["register"]

_GROUP_HELP = """Anomaly detection with GLAD: graphs of events and entities per window.

\b
Train on logs of normal operation (anomalous sessions you know of can be left out with
--labels), then score new logs: each window gets a score, windows above the threshold
learned from held-out normal windows are reported with the edges that explain them.
"""

_TRAIN_HELP = """Train a GLAD model on LOG files and write it to --out.

Windows are sessions (--session-key, a regex whose match, or group named `key`, names the
session, e.g. an HDFS block id) or time windows (--window, optionally sliding by --step).
The last --validation-fraction of the windows (by time) is held out to set the threshold.

\b
Examples:
  logpipe detect train HDFS.log --preset HDFS --session-key 'blk_-?\\d+' --out model/
  logpipe detect train app.log --format '<Date> <Time> <Level> <Content>' \\
      --window 10m --out model/
"""

_SCORE_HELP = """Score LOG with a model from `logpipe detect train` and list anomalous windows.

Prints one row per anomalous window (score, threshold and its most anomalous edges);
--all lists every window; --json prints one JSON object instead. Exit code 0 either way:
finding anomalies is a result, not a failure.

\b
Examples:
  logpipe detect score today.log --model model/
  logpipe detect score today.log --model model/ --json --top 3
"""


def _session_pattern(text: str) -> str:
    """A session regex with a ``key`` group: the user's own, or the whole match as key."""
    return text if "(?P<key>" in text else f"(?P<key>{text})"


def _windowing(session_key: str | None, window: str | None, step: str | None,
               max_events: int) -> Any:  # fmt: skip
    from logpipe.detect.grouping import Windowing  # noqa: PLC0415
    from logpipe.logql.units import parse_duration  # noqa: PLC0415

    if (session_key is None) == (window is None):
        raise UsageError("give exactly one of --session-key REGEX or --window DURATION")
    if session_key is not None:
        if step is not None:
            raise UsageError("--step applies to --window only")
        return Windowing("session", key_pattern=_session_pattern(session_key),
                         max_events=max_events)  # fmt: skip
    assert window is not None
    try:
        size_s = parse_duration(window) / 1e9
        step_s = parse_duration(step) / 1e9 if step is not None else None
    except ValueError as exc:
        raise UsageError(f"--window/--step: {exc} (use e.g. 30s, 10m, 1h)") from None
    return Windowing("time", size_s=size_s, step_s=step_s, max_events=max_events)


def _read_labels(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        return set(path.read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--labels {path}: {exc}") from None


def _parse_logs(parser: Any, paths: Sequence[Path], windowing: Any) -> tuple[list[Any], int]:
    """Windows of every file (each parsed whole, continuing the same miner) and line count."""
    windows: list[Any] = []
    lines = 0
    for path in paths:
        parsed = parser.parse_file(path)
        lines += len(parsed)
        windows.extend(windowing.windows(parsed))
    return windows, lines


def _err(text: str) -> None:
    click.echo(text, err=True)


@dataclass(frozen=True)
class TrainOptions:
    """``logpipe detect train``'s options, as click parsed them."""

    logs: tuple[Path, ...]
    out: Path
    log_format: str | None
    preset: str | None
    session_key: str | None
    window: str | None
    step: str | None
    max_events: int
    labels: Path | None
    validation_fraction: float
    device: str
    seed: int
    epochs: int | None
    as_json: bool


def _train(opts: TrainOptions) -> None:
    from logpipe.detect.events import EventParser  # noqa: PLC0415
    from logpipe.detect.grouping import label_by_key  # noqa: PLC0415
    from logpipe.detect.modeldir import ModelPipeline, write_pipeline  # noqa: PLC0415

    if (opts.log_format is None) == (opts.preset is None):
        raise UsageError("give the log format: --format FORMAT or --preset NAME")
    if opts.max_events < 1:
        raise UsageError("--max-events must be at least 1")
    if not 0.0 < opts.validation_fraction < 1.0:
        raise UsageError("--validation-fraction must be between 0 and 1")
    windowing = _windowing(opts.session_key, opts.window, opts.step, opts.max_events)
    parser = EventParser(opts.log_format, preset=opts.preset)
    started = time.perf_counter()
    windows, lines = _parse_logs(parser, opts.logs, windowing)
    known_bad = _read_labels(opts.labels)
    if known_bad:
        windows = label_by_key(windows, known_bad)
    ordered = sorted(windows, key=lambda w: (w.start_ns, w.events[0].line_no if w.events else 0))
    normal = [w for w in ordered if w.label != 1 and w.events]
    held = max(1, round(len(normal) * opts.validation_fraction))
    if len(normal) - held < 1:
        raise UsageError(
            f"{len(normal)} normal window(s) with events: too few to train and hold out "
            "validation windows; give more logs or smaller windows"
        )
    train, validation = normal[:-held], normal[-held:]
    parse_secs = time.perf_counter() - started
    left_out = len(windows) - len(normal)
    if not opts.as_json:
        _err(f"parsed {lines:,} lines into {len(windows):,} windows in {parse_secs:.1f}s; "
             f"training on {len(train):,}, holding out {len(validation):,} for the "
             f"threshold ({left_out:,} left out: labelled anomalous or empty)")  # fmt: skip
    detector = _new_glad(opts.device, opts.seed, opts.epochs)
    fit_started = time.perf_counter()
    detector.fit(train, validation)
    fit_secs = time.perf_counter() - fit_started
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    detector.save(out)
    pipeline = ModelPipeline(
        windowing=windowing,
        log_format=opts.log_format,
        preset=opts.preset,
        trained_on={
            "files": [str(p) for p in opts.logs],
            "lines": lines,
            "windows": len(windows),
            "train_windows": len(train),
            "validation_windows": len(validation),
            "left_out_windows": left_out,
        },
    )
    write_pipeline(out, pipeline, parser)
    summary = {
        "model": str(out),
        "lines": lines,
        "windows": len(windows),
        "train_windows": len(train),
        "validation_windows": len(validation),
        "threshold": detector.threshold,
        "device": str(detector.device),
        "parse_seconds": round(parse_secs, 3),
        "train_seconds": round(fit_secs, 3),
    }
    if opts.as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        _err(f"trained GLAD on {summary['device']} in {fit_secs:.1f}s; threshold "
             f"{detector.threshold:.4g}; model written to {out}")  # fmt: skip


def _new_glad(device: str, seed: int, epochs: int | None) -> Any:
    try:
        from logpipe.models.glad import GladConfig, GladDetector  # noqa: PLC0415
    except ImportError as exc:  # the ml extra (torch, torch-geometric) is missing
        raise UsageError(
            f"GLAD needs logpipe's 'ml' extra (pip install 'logpipe[ml]'): {exc}"
        ) from None
    if epochs is not None and epochs < 1:
        raise UsageError("--epochs must be at least 1")
    config = GladConfig(device=device, seed=seed)
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    return GladDetector(config)


def _score(log: Path, model: Path, *, top: int, show_all: bool, as_json: bool,
           limit: int) -> None:  # fmt: skip
    from logpipe.detect.loading import load_detector  # noqa: PLC0415
    from logpipe.detect.modeldir import read_pipeline  # noqa: PLC0415

    pipeline = read_pipeline(model)
    detector = load_detector(model)
    parser = pipeline.parser(model)
    started = time.perf_counter()
    windows, lines = _parse_logs(parser, [log], pipeline.windowing)
    scored = detector.explain([w for w in windows if w.events], top_k=top)
    secs = time.perf_counter() - started
    anomalous = [s for s in scored if s.anomalous]
    rows = scored if show_all else anomalous
    rows = sorted(rows, key=lambda s: -s.score)[:limit] if limit > 0 else rows
    if as_json:
        body = {
            "model": str(model),
            "file": str(log),
            "lines": lines,
            "windows": len(scored),
            "empty_windows": len(windows) - len(scored),
            "anomalous": len(anomalous),
            "threshold": detector.threshold,
            "seconds": round(secs, 3),
            "results": [_score_json(s) for s in rows],
        }
        click.echo(json.dumps(body, sort_keys=True, allow_nan=False, default=str))
        return
    _print_table(rows, log, lines=lines, windows=len(scored), anomalous=len(anomalous), secs=secs)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _score_json(s: Any) -> dict[str, Any]:
    return {
        "key": s.key,
        "start_ns": s.start_ns,
        "end_ns": s.end_ns,
        "score": _finite(s.score),
        "threshold": _finite(s.threshold),
        "anomalous": s.anomalous,
        "edges": [
            {
                "source": e.source,
                "target": e.target,
                "kind": e.kind,
                "score": _finite(e.score),
                "count": e.count,
            }
            for e in s.edges
        ],
    }


def _print_table(rows: Sequence[Any], log: Path, *, lines: int, windows: int, anomalous: int,
                 secs: float) -> None:  # fmt: skip
    """One header line per window, then its edges indented: readable at any width (a
    table squeezes node names such as ``template:Receiving block <*>`` into slivers)."""
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415

    from logpipe.timefmt import rfc3339  # noqa: PLC0415

    console = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    rate = lines / secs if secs > 0 else 0.0
    console.print(f"{escape(str(log))}: {lines:,} lines, {windows:,} windows parsed and "
                  f"scored in {secs:.1f}s ({rate:,.0f} lines/s, model start included); "
                  f"[bold]{anomalous:,} anomalous[/]")  # fmt: skip
    for s in rows:
        mark = "[bold red]ANOMALY[/]" if s.anomalous else "[green]normal[/] "
        console.print(f"{mark} {escape(s.key)}  {rfc3339(s.start_ns)}  score "
                      f"{s.score:.4g} (threshold {s.threshold:.4g})")  # fmt: skip
        for e in s.edges:
            console.print(f"    {escape(e.source)} --{e.kind}--> {escape(e.target)}  "
                          f"[dim]edge score {e.score:.3g}, x{e.count}[/]")  # fmt: skip


def register(app: click.Group) -> None:
    """Add the ``detect`` group (``train``, ``score``) to ``app``."""

    @app.group("detect", help=_GROUP_HELP, no_args_is_help=True)
    def detect() -> None:
        pass

    @detect.command("train", help=_TRAIN_HELP, no_args_is_help=True)
    @click.argument("logs", nargs=-1, required=True,
                    type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
    @click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Model directory to write.")  # fmt: skip
    @click.option("--format", "log_format", help="Log format, e.g. '<Date> <Time> <Content>'.")
    @click.option("--preset", help="A Loghub system's format by name (HDFS, BGL, Linux...).")
    @click.option("--session-key", help="Regex naming each line's session (HDFS: 'blk_-?\\d+').")
    @click.option("--window", help="Time window length, e.g. 10m (instead of sessions).")
    @click.option("--step", help="Slide time windows by this much (default: the window).")
    @click.option("--max-events", default=1024, show_default=True,
                  help="Events kept per window; more are counted, not kept.")  # fmt: skip
    @click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="File of known-anomalous session keys (left out of training).")  # fmt: skip
    @click.option("--validation-fraction", default=0.2, show_default=True,
                  help="Latest normal windows held out for the threshold.")  # fmt: skip
    @click.option("--device", default="auto", show_default=True,
                  type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train.")  # fmt: skip
    @click.option("--seed", default=0, show_default=True, help="Random seed (deterministic).")
    @click.option("--epochs", type=int, help="Training epochs (default: the model's).")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    def train(**opts: Any) -> None:
        _train(TrainOptions(**opts))

    @detect.command("score", help=_SCORE_HELP, no_args_is_help=True)
    @click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--model", "-m", required=True,
                  type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="Model directory written by `logpipe detect train`.")  # fmt: skip
    @click.option("--top", default=5, show_default=True, help="Edges named per window.")
    @click.option("--all", "show_all", is_flag=True, help="List every window, not only anomalies.")
    @click.option("--limit", default=0, show_default=True,
                  help="List at most this many windows, highest first (0: all).")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
    def score(log: Path, model: Path, **opts: Any) -> None:
        if opts["top"] < 0 or opts["limit"] < 0:
            raise UsageError("--top and --limit must not be negative")
        _score(log, model, **opts)
