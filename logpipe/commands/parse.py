"""``logpipe parse``: mine templates from log files and write Loghub-style results.

The command is a thin shell: flags are checked here, the streaming work is in
:mod:`logpipe.commands.parse_job`, and the summary and progress bar in
:mod:`logpipe.commands.parse_report`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from logpipe.commands.parse_job import ParseOptions, ProgressSink, run_parse
from logpipe.commands.parse_report import RichProgress, print_summary
from logpipe.errors import InputError
from logpipe.io.inputs import DEFAULT_BATCH_LINES
from logpipe.io.outputs import OutputFormat

__all__ = ["register"]

# One paragraph per line: typer's rich help re-wraps paragraphs to the terminal width.
_HELP = "\n\n".join(
    [
        "Mine log templates from files, directories, globs or stdin.",
        "PATHS are files, directories (read recursively, hidden files skipped), glob "
        "patterns (quote them: 'logs/**/*.log') or - for standard input. gzip and zstd "
        "inputs are recognised by their first bytes and decompressed on the fly.",
        "With --out DIR, each input NAME gets DIR/NAME_structured.csv (one row per input "
        "line, in input order: LineId, the format's header fields, Content, EventId, "
        "EventTemplate, ParameterList) and DIR/NAME_templates.csv (EventId, EventTemplate, "
        "Occurrences), as in Loghub. Compressed inputs drop the .gz/.zst suffix from NAME; "
        "stdin is named 'stdin'. Without --out only the summary is printed.",
        "Lines that do not match the format are kept (Content is the whole line) and "
        "counted; invalid UTF-8 is decoded with U+FFFD and counted; nothing is dropped.",
        "Exit codes: 0 ok; 1 an input could not be read to the end (truncated gzip/zstd, "
        "unreadable file: everything before the damage is still parsed and written); "
        "2 usage error.",
        "Examples:",
        "logpipe parse app.log --log-format '<Date> <Time> <Level> <Component>: <Content>' "
        "--out out/",
        "logpipe parse HDFS.log.gz --preset HDFS --out out/ --output-format parquet",
        "logpipe parse 'logs/**/*.log' --top 20 --json",
        "kubectl logs my-pod | logpipe parse - --out out/",
    ]
)


def _progress(no_progress: bool) -> ProgressSink | None:
    """A bar on stderr only when it is a terminal: pipes and CI logs stay clean."""
    err = Console(stderr=True)
    if no_progress or not err.is_terminal:
        return None
    return RichProgress(err)


def register(app: typer.Typer) -> None:
    """Add the ``parse`` command to ``app``."""

    @app.command("parse", help=_HELP, no_args_is_help=True)
    def parse(  # noqa: PLR0917 - typer maps each parameter to a flag
        paths: Annotated[
            list[str],
            typer.Argument(help="Log files, directories, glob patterns, or - for stdin."),
        ],
        log_format: Annotated[
            str | None,
            typer.Option(
                "--log-format",
                "-f",
                help="Loghub-style format, e.g. '<Date> <Time> <Level> <Component>: <Content>'.",
            ),
        ] = None,
        preset: Annotated[
            str | None,
            typer.Option("--preset", "-p", help="A named format preset, e.g. HDFS."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="Directory for the result files (created)."),
        ] = None,
        output_format: Annotated[
            OutputFormat,
            typer.Option("--output-format", "-F", help="Format of the result files."),
        ] = OutputFormat.CSV,
        top: Annotated[
            int, typer.Option("--top", min=0, help="Templates shown in the summary.")
        ] = 10,
        state_in: Annotated[
            Path | None,
            typer.Option("--state-in", help="Start from a parser state saved by --state-out."),
        ] = None,
        state_out: Annotated[
            Path | None,
            typer.Option("--state-out", help="Save the parser state (JSON) after the run."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as one JSON object.")
        ] = False,
        no_progress: Annotated[
            bool, typer.Option("--no-progress", help="No progress bar, even on a terminal.")
        ] = False,
        batch_lines: Annotated[
            int,
            typer.Option("--batch-lines", min=1, help="Lines per processing batch (at most)."),
        ] = DEFAULT_BATCH_LINES,
    ) -> None:
        progress = _progress(no_progress)
        options = ParseOptions(
            paths=paths,
            log_format=log_format,
            preset=preset,
            out_dir=out,
            output_format=output_format,
            state_in=state_in,
            state_out=state_out,
            batch_lines=batch_lines,
        )
        report = run_parse(options, progress)
        stdout = Console(file=sys.stdout)
        print_summary(report, top, as_json=as_json, console=stdout)
        errors = report.errors
        if len(errors) == 1:
            raise errors[0]
        if errors:
            details = "; ".join(str(e) for e in errors)
            raise InputError(f"{len(errors)} inputs could not be read to the end: {details}")
