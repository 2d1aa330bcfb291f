"""The ``logpipe`` command line: one click group, one module per subcommand.

Exit codes: 0 ok, 1 runtime failure, 2 usage error. Every :class:`~logpipe.errors.LogpipeError`
is printed as one clear line on stderr instead of a traceback.

Why click and not a heavier framework: ``logpipe parse`` is often run once per file, so
start-up time is part of its throughput; heavy modules (rich, pyarrow.parquet) are imported
only by the commands that need them.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from logpipe import __version__
from logpipe.errors import LogpipeError

__all__ = ["app", "main", "run"]


# Which module registers each command: a command's module (and what it imports, such as
# pyarrow) is loaded only when that command runs or the help lists it.
_COMMANDS = {
    "parse": "logpipe.commands.parse",
    "eval": "logpipe.commands.evaluate",
    "compress": "logpipe.commands.archive",
    "decompress": "logpipe.commands.archive",
    "cat": "logpipe.commands.archive",
    "grep": "logpipe.commands.archive",
    "archive": "logpipe.commands.archive",
    "server": "logpipe.commands.server",
    "ingest": "logpipe.commands.ingest",
    "query": "logpipe.commands.query",
    "serve": "logpipe.commands.serve",
    "config": "logpipe.commands.config",
    "detect": "logpipe.commands.detect",
    "ask": "logpipe.commands.ask",
}


class _LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            importlib.import_module(_COMMANDS[cmd_name]).register(self)
        return self.commands.get(cmd_name)


@click.group(
    name="logpipe",
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="logpipe", message="%(prog)s %(version)s")
def app() -> None:
    """logpipe: parse, archive, query and watch your logs.

    Log analytics pipeline: template mining, archives, LogQL, anomaly detection.
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn logpipe's own errors into one line on stderr and an exit code."""
    try:
        result = app.main(args=argv, prog_name="logpipe", standalone_mode=False)
    except LogpipeError as exc:
        click.echo(f"logpipe: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("logpipe: aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("logpipe: interrupted", err=True)
        return 130
    except click.ClickException as exc:  # bad flags and arguments: usage errors, exit 2
        exc.show()
        return exc.exit_code
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point: run :func:`main`, flush, and leave at once.

    Why ``os._exit``: by the time ``main`` returns every output file is closed and renamed,
    and tearing down the interpreter with pyarrow loaded costs tens of milliseconds, which
    is a measurable share of a ``logpipe parse`` over a small file.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
