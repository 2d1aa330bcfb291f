"""How ``logpipe parse`` shows its results: a summary table or one JSON object.

On a terminal the table is drawn with rich; into a pipe or file it is plain aligned text
(no box drawing, no styling, and no rich import on the way).
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from logpipe.commands.parse_job import ParseReport

__all__ = ["print_summary", "summary_dict"]


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
        "llm": report.llm,
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


def _llm_line(stats: dict[str, int]) -> str:
    """One line of the LLM parser's counters: what the model cost and what came of it."""
    groups = stats.get("groups", 0)
    hits = stats.get("cache_hits", 0)
    return (
        f"model calls: {stats.get('model_calls', 0):,} ({stats.get('accepted', 0):,} accepted, "
        f"{stats.get('repaired', 0):,} repaired, {stats.get('rejected', 0):,} rejected, "
        f"{stats.get('backend_errors', 0):,} failed)   deferred by the budget: "
        f"{stats.get('deferred', 0):,}   cache hits: {hits:,} of {groups:,} groups   "
        f"merged groups: {stats.get('merges', 0):,}"
    )


def print_summary(
    report: ParseReport, top: int, *, as_json: bool, file: TextIO | None = None
) -> None:
    """Print the end-of-run summary to ``file`` (stdout by default)."""
    out = file or sys.stdout
    if as_json:
        out.write(json.dumps(summary_dict(report, top), ensure_ascii=False) + "\n")
        out.flush()
        return
    lines = [
        f"{report.lines:,} lines, {len(report.templates):,} templates in "
        f"{report.seconds:.2f} s ({_rate(report):,.0f} lines/s)",
        f"not matching the format: {report.unmatched:,}   invalid UTF-8: "
        f"{report.invalid_utf8:,}   truncated: {report.truncated:,}",
    ]
    if report.llm is not None:
        lines.append(_llm_line(report.llm))
    lines += [f"wrote {path}" for item in report.inputs for path in item.outputs]
    rows = [
        (
            t.event_id,
            f"{t.occurrences:,}",
            f"{(t.occurrences / report.lines if report.lines else 0.0):.1%}",
            t.template,
        )
        for t in report.templates[:top]
    ]
    title = f"Top {len(rows)} templates"
    if out.isatty():
        _print_rich(out, lines, title, rows)
        return
    out.write("\n".join(lines) + "\n")
    if rows:
        header = ("EventId", "Occurrences", "Share", "EventTemplate")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        out.write(f"{title}\n")
        for r in [header, *rows]:
            out.write(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}\n")
    out.flush()


def _print_rich(
    out: TextIO, lines: list[str], title: str, rows: list[tuple[str, str, str, str]]
) -> None:
    from rich.console import Console  # noqa: PLC0415 - only a terminal pays for rich
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = Console(file=out)
    for line in lines:
        console.print(line, highlight=False, markup=False)
    if rows:
        table = Table(title=title, title_justify="left")
        table.add_column("EventId", no_wrap=True)
        table.add_column("Occurrences", justify="right", no_wrap=True)
        table.add_column("Share", justify="right", no_wrap=True)
        table.add_column("EventTemplate", overflow="fold")
        for event_id, occurrences, share, template in rows:
            table.add_row(event_id, occurrences, share, Text(template))
        console.print(table)
