"""The ``logpipe`` command line: one typer app, one module per subcommand.

Exit codes: 0 ok, 1 runtime failure, 2 usage error. Every :class:`~logpipe.errors.LogpipeError`
is printed as one clear line on stderr instead of a traceback.
"""

from __future__ import annotations

import sys

import typer

from logpipe import __version__
from logpipe.commands import evaluate as evaluate_cmd
from logpipe.commands import parse as parse_cmd
from logpipe.errors import LogpipeError

__all__ = ["app", "main"]

app = typer.Typer(
    name="logpipe",
    help="Log analytics pipeline: template mining, archives, LogQL, anomaly detection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"logpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """logpipe: parse, archive, query and watch your logs."""


parse_cmd.register(app)
evaluate_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn logpipe's own errors into one line on stderr and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except LogpipeError as exc:
        typer.echo(f"logpipe: error: {exc}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        typer.echo("logpipe: aborted", err=True)
        return 1
    except KeyboardInterrupt:
        typer.echo("logpipe: interrupted", err=True)
        return 130
    except typer.TyperException as exc:  # bad flags and arguments: usage errors, exit 2
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
