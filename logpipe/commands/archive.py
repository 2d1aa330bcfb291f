"""``logpipe compress | decompress | cat | grep`` and ``logpipe archive info``.

Thin shells over :mod:`logpipe.archive.api`: flags are checked here, the work is there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import BinaryIO

import click

from logpipe.archive import api
from logpipe.errors import UsageError

__all__ = ["register"]

_COMPRESS_HELP = """Compress logs into a searchable, lossless .lpz archive.

INPUTS are files, directories, globs or - for stdin (gzip/zstd inputs are decompressed first);
they are stored as one byte stream, in order. Lines are split into templates and typed value
columns (logzip-style) and every stream is zstd-compressed; `logpipe decompress` gives the
input back byte for byte.

\b
Examples:
  logpipe compress app.log -o app.lpz
  logpipe compress 'logs/*.log' -o logs.lpz --level 22
  logpipe grep 'blk_-4242' app.lpz
"""


def _output_stream(path: str | None, default: Path, force: bool) -> tuple[BinaryIO, Path | None]:
    if path == "-":
        return sys.stdout.buffer, None
    target = Path(path) if path else default
    if target.exists() and not force:
        raise UsageError(f"{target} exists; use --force to overwrite or -o to choose another")
    return open(target, "wb"), target


def register(app: click.Group) -> None:
    """Add the archive commands to ``app``."""

    @app.command("compress", help=_COMPRESS_HELP, no_args_is_help=True)
    @click.argument("inputs", nargs=-1, required=True)
    @click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
                  help="The archive to write (.lpz).")  # fmt: skip
    @click.option("--level", type=click.IntRange(1, 22), default=15, show_default=True,
                  help="zstd level for every stream.")  # fmt: skip
    @click.option("--segment-mb", type=click.FloatRange(min=0.01), default=8.0,
                  show_default=True, help="Input MiB per segment.")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    @click.option("--no-progress", is_flag=True, help="No progress bar, even on a terminal.")
    @click.option("--force", is_flag=True, help="Overwrite an existing archive.")
    def compress(  # noqa: PLR0917 - click maps each parameter to a flag
        inputs: tuple[str, ...],
        output: Path,
        level: int,
        segment_mb: float,
        as_json: bool,
        no_progress: bool,
        force: bool,
    ) -> None:
        if output.exists() and not force:
            raise UsageError(f"{output} exists; use --force to overwrite or -o to choose another")
        progress = None
        bar = None
        if not no_progress and sys.stderr.isatty():
            from rich.console import Console  # noqa: PLC0415

            from logpipe.commands.parse_progress import RichProgress  # noqa: PLC0415
            from logpipe.io.inputs import expand_inputs  # noqa: PLC0415

            sizes = [s.size_bytes for s in expand_inputs(inputs)]
            bar = RichProgress(Console(stderr=True))
            bar.start("reading", None if None in sizes else sum(s or 0 for s in sizes))
            progress = bar.update
        try:
            report = api.compress(
                inputs, output, level=level, segment_bytes=int(segment_mb * (1 << 20)),
                progress=progress,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.stop()
        summary = {
            "archive": str(output),
            "inputs": report.inputs,
            "input_bytes": report.input_bytes,
            "archive_bytes": report.output_bytes,
            "ratio": round(report.ratio, 2),
            "lines": report.lines,
            "verbatim_lines": report.verbatim_lines,
            "segments": report.segments,
        }
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo(
                f"{report.input_bytes:,} bytes -> {report.output_bytes:,} bytes "
                f"(ratio {report.ratio:.1f}), {report.lines:,} lines in "
                f"{report.segments} segment(s), {report.verbatim_lines:,} stored verbatim"
            )

    @app.command("decompress", no_args_is_help=True)
    @click.argument("archive", type=click.Path(path_type=Path))
    @click.option(
        "-o", "--output", help="Where to write (default: ARCHIVE without .lpz; - for stdout)."
    )
    @click.option("--force", is_flag=True, help="Overwrite an existing output file.")
    @click.option(
        "--salvage", is_flag=True, help="Recover every intact segment of a damaged archive."
    )
    def decompress(archive: Path, output: str | None, force: bool, salvage: bool) -> None:
        """Restore the exact bytes that were compressed into ARCHIVE."""
        default = (
            archive.with_suffix("")
            if archive.suffix == ".lpz"
            else archive.with_name(archive.name + ".out")
        )
        out, target = _output_stream(output, default, force)
        try:
            damaged = api.decompress(archive, out, salvage=salvage)
        except BaseException:
            if target is not None:
                out.close()
                target.unlink(missing_ok=True)
            raise
        if target is not None:
            out.close()
        else:
            out.flush()
        for message in damaged:
            click.echo(f"logpipe: skipped damaged data: {message}", err=True)

    @app.command("cat", no_args_is_help=True)
    @click.argument("archive", type=click.Path(path_type=Path))
    @click.option("--lines", "span", metavar="A:B",
                  help="Only lines A to B (1-based, inclusive; A: or :B open-ended).")  # fmt: skip
    def cat(archive: Path, span: str | None) -> None:
        """Print the archived lines (or a range of them) to stdout."""
        first, last = 1, None
        if span:
            head, sep, tail = span.partition(":")
            try:
                first = int(head) if head else 1
                last = (int(tail) if tail else None) if sep else first
            except ValueError:
                raise UsageError(f"--lines {span!r}: expected A:B with line numbers") from None
        api.cat(archive, sys.stdout.buffer, first, last)
        sys.stdout.buffer.flush()

    @app.command("grep", no_args_is_help=True)
    @click.argument("pattern")
    @click.argument("archive", type=click.Path(path_type=Path))
    @click.option("-n", "--line-number", is_flag=True, help="Prefix each line with its number.")
    @click.option("-c", "--count", is_flag=True, help="Print only the number of matching lines.")
    def grep(pattern: str, archive: Path, line_number: bool, count: bool) -> None:
        """Print the lines of ARCHIVE containing PATTERN (a fixed string, as grep -F).

        Searches the template dictionary and the value columns first and turns back into
        text only the templates that can match. Exit status 0 when a line matched, 1 when
        none did (grep's convention).
        """
        sink: BinaryIO = open("/dev/null", "wb") if count else sys.stdout.buffer  # noqa: SIM115
        try:
            matches = api.grep(pattern, archive, sink, line_numbers=line_number)
        finally:
            if count:
                sink.close()
        if count:
            click.echo(str(matches))
        sys.stdout.flush()
        if not matches:
            raise click.exceptions.Exit(1)

    @app.group("archive")
    def archive_group() -> None:
        """Inspect archives."""

    @archive_group.command("info", no_args_is_help=True)
    @click.argument("archive", type=click.Path(path_type=Path))
    @click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
    def archive_info(archive: Path, as_json: bool) -> None:
        """Segments, templates and the compression ratio of each stream of ARCHIVE."""
        details = api.info(archive)
        if as_json:
            click.echo(json.dumps(details, ensure_ascii=False))
            return
        click.echo(
            f"{details['archive']}: {details['bytes']:,} bytes for {details['input_bytes']:,} "
            f"input bytes (ratio {details['ratio']}), {len(details['segments'])} segment(s)"
        )
        click.echo(f"{'stream':<8} {'compressed':>12} {'raw':>12} {'ratio':>7}")
        for name, s in details["streams"].items():
            click.echo(
                f"{name:<8} {s['compressed_bytes']:>12,} {s['raw_bytes']:>12,} {s['ratio'] or 0:>7}"
            )
        templates = sum(int(s["templates"] or 0) for s in details["segments"])
        lines = sum(int(s["lines"] or 0) for s in details["segments"])
        verbatim = sum(int(s["verbatim_lines"] or 0) for s in details["segments"])
        click.echo(
            f"lines {lines:,}, templates {templates:,} (per segment, summed), verbatim {verbatim:,}"
        )
