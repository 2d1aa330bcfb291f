"""``logpipe ingest``: load log files into the store as one labelled stream."""

from __future__ import annotations

import json
from pathlib import Path

import click

from logpipe.errors import StoreError, UsageError

__all__ = ["register"]

_HELP = """Load log FILES into the log store in DIR, as the stream named by --labels.

FILES are files, directories, globs or - for stdin (gzip/zstd recognised by content). Each
line's time comes from its header: with --log-format (a preset such as HDFS, or a format
string) from the format's time fields, otherwise (auto) from the timestamp layout detected
near the start of the lines. Lines without a time of their own take the previous line's
(stack traces); a file starting without one starts at its modification time. The lines are
then queryable with `logpipe query` and through `logpipe server`.

\b
Examples:
  logpipe ingest app.log --store ./logs --labels '{app="api", env="prod"}'
  logpipe ingest HDFS.log --store ./logs --labels '{app="hdfs"}' --log-format HDFS
  logpipe ingest 'logs/*.log.gz' --store ./logs --labels '{app="web"}' --tenant team-a --json
"""


def register(app: click.Group) -> None:
    """Add the ``ingest`` command to ``app``."""

    @app.command("ingest", help=_HELP, no_args_is_help=True)
    @click.argument("files", nargs=-1, required=True)
    @click.option("--store", "store_dir", required=True,
                  type=click.Path(file_okay=False, path_type=Path),
                  help="Store directory (created when missing).")  # fmt: skip
    @click.option("--labels", "label_text", required=True,
                  help='The stream\'s labels, e.g. \'{app="api"}\'.')  # fmt: skip
    @click.option("--log-format", "-f", default="auto", show_default=True,
                  help="A preset (HDFS, ...), a format string, or auto.")  # fmt: skip
    @click.option("--tenant", default="fake", show_default=True, help="Tenant id.")
    @click.option("--tz", default="UTC", show_default=True,
                  help="Zone of times written without one (+02:00, Europe/Berlin).")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
    def ingest(  # noqa: PLR0917 - click maps each parameter to a flag
        files: tuple[str, ...],
        store_dir: Path,
        label_text: str,
        log_format: str,
        tenant: str,
        tz: str,
        as_json: bool,
    ) -> None:
        from logpipe.loadfiles import load_files, parse_stream_labels  # noqa: PLC0415
        from logpipe.store import Store, validate_tenant  # noqa: PLC0415

        labels = parse_stream_labels(label_text)
        try:
            tenant = validate_tenant(tenant)
        except StoreError as exc:
            raise UsageError(f"--tenant: {exc}") from None
        store_dir.mkdir(parents=True, exist_ok=True)
        report = load_files(
            Store(store_dir), files, labels, tenant=tenant, log_format=log_format, tz=tz
        )
        if as_json:
            click.echo(json.dumps(report.to_dict()))
            return
        from rich.console import Console  # noqa: PLC0415 - rich only for the table
        from rich.table import Table  # noqa: PLC0415

        table = Table(title=f"ingested into {store_dir} as {report.labels} (tenant {tenant})")
        for column in ("file", "lines", "stored", "time carried", "rejected"):
            left = column in ("file", "rejected")
            table.add_column(column, justify="left" if left else "right", overflow="fold")
        for f in report.files:
            rejected = ", ".join(f"{k}: {v}" for k, v in sorted(f.rejected.items())) or "-"
            table.add_row(f.path, str(f.lines), str(f.stored), str(f.time_filled), rejected)
        console = Console()
        if not console.is_terminal:  # a pipe or a log file: do not cut paths at 80 columns
            console = Console(width=200)
        console.print(table)
