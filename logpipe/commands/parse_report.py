"""How ``logpipe parse`` shows its results: a rich summary, a JSON object, a progress bar."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from logpipe.commands.parse_job import ParseReport

__all__ = ["RichProgress", "print_summary", "summary_dict"]


class RichProgress:
    """A transient progress bar on stderr: bytes while reading, lines while writing."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None) -> None:
        self.stop()
        amount = DownloadColumn() if description == "reading" else MofNCompleteColumn()
        speed = TransferSpeedColumn() if description == "reading" else TimeElapsedColumn()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            amount,
            speed,
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def update(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


def _rate(report: ParseReport) -> float:
    return report.lines / report.seconds if report.seconds > 0 else 0.0


def summary_dict(report: ParseReport, top: int) -> dict[str, Any]:
    """The summary as one JSON-ready object (``--json``)."""
    return {
        "lines": report.lines,
        "templates": len(report.templates),
        "seconds": round(report.seconds, 3),
        "lines_per_sec": round(_rate(report), 1),
        "unmatched_lines": report.unmatched,
        "invalid_utf8_lines": report.invalid_utf8,
        "truncated_lines": report.truncated,
        "log_format": report.framer,
        "inputs": [
            {
                "path": i.path,
                "name": i.name,
                "lines": i.lines,
                "templates": len(i.occurrences),
                "unmatched_lines": i.unmatched,
                "invalid_utf8_lines": i.invalid_utf8,
                "truncated_lines": i.truncated,
                "outputs": i.outputs,
                "error": None if i.error is None else str(i.error),
            }
            for i in report.inputs
        ],
        "top_templates": [
            {"event_id": t.event_id, "template": t.template, "occurrences": t.occurrences}
            for t in report.templates[:top]
        ],
    }


def print_summary(
    report: ParseReport, top: int, *, as_json: bool, console: Console | None = None
) -> None:
    """Print the end-of-run summary to ``console`` (stdout by default)."""
    if console is None:
        console = Console(file=sys.stdout)
    if as_json:
        # Straight to the file: rich must not wrap or style machine-readable output.
        console.file.write(json.dumps(summary_dict(report, top), ensure_ascii=False) + "\n")
        console.file.flush()
        return
    console.print(
        f"[bold]{report.lines:,}[/] lines, [bold]{len(report.templates):,}[/] templates "
        f"in {report.seconds:.2f} s ([bold]{_rate(report):,.0f}[/] lines/s)",
        highlight=False,
    )
    console.print(
        f"not matching the format: {report.unmatched:,}   invalid UTF-8: "
        f"{report.invalid_utf8:,}   truncated: {report.truncated:,}",
        highlight=False,
    )
    for item in report.inputs:
        for path in item.outputs:
            console.print(f"wrote {path}", highlight=False, markup=False)
    if top > 0 and report.templates:
        table = Table(
            title=f"Top {min(top, len(report.templates))} templates", title_justify="left"
        )
        table.add_column("EventId", no_wrap=True)
        table.add_column("Occurrences", justify="right", no_wrap=True)
        table.add_column("Share", justify="right", no_wrap=True)
        table.add_column("EventTemplate", overflow="fold")
        for t in report.templates[:top]:
            share = t.occurrences / report.lines if report.lines else 0.0
            table.add_row(t.event_id, f"{t.occurrences:,}", f"{share:.1%}", Text(t.template))
        console.print(table)
