"""``logpipe eval TRUTH.csv PARSED.csv``: score a parse against Loghub ground truth.

Both files are Loghub structured CSVs (``LineId, ..., EventTemplate``); the metrics are the
Loghub-2.0 ones, computed as its evaluation code does (see :mod:`logpipe.evaluation`), so the
figures printed here can be set beside the published tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from logpipe.evaluation import AlignedTemplates, ParsingScores


__all__ = ["register"]

_EPILOG = """\b
Examples:
  logpipe eval HDFS_2k.log_structured_corrected.csv out/HDFS_2k.log_structured.csv
  logpipe eval truth.csv parsed.csv --json | jq .ga

Lines are aligned by LineId when both files have that column, else by row order.
Exit codes: 0 ok, 1 the files cannot be read or compared, 2 usage error.
"""

_METRICS: tuple[tuple[str, str], ...] = (
    ("ga", "share of lines in correctly grouped groups"),
    ("pa", "share of lines whose template text is exactly right"),
    ("fga", "F1 of group precision and recall"),
    ("fta", "F1 of template precision and recall"),
)


def _render(scores: ParsingScores, aligned: AlignedTemplates, truth: Path, parsed: Path) -> None:
    from rich.console import Console  # noqa: PLC0415 - rich only when a table is shown
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    table = Table(title=f"{parsed} vs {truth}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, meaning in _METRICS:
        table.add_row(key.upper(), f"{getattr(scores, key):.4f}", meaning)
    table.add_section()
    table.add_row("PGA / RGA", f"{scores.pga:.4f} / {scores.rga:.4f}", "precision / recall of FGA")
    table.add_row("PTA / RTA", f"{scores.pta:.4f} / {scores.rta:.4f}", "precision / recall of FTA")
    table.add_row("FTA strict", f"{scores.fta_strict:.4f}", "FTA, also requiring unsplit groups")
    table.add_section()
    counts = (
        ("lines", scores.n_lines, f"aligned by {aligned.aligned_by}"),
        ("scored lines", scores.n_scored_lines, "lines with a truth template"),
        ("truth groups", scores.n_truth_groups, ""),
        ("predicted groups", scores.n_pred_groups, ""),
        ("correct groups", scores.n_correct_groups, ""),
        ("correct templates", scores.n_correct_templates, ""),
    )
    for name, value, meaning in counts:
        table.add_row(name, str(value), meaning)
    console.print(table)


def register(app: click.Group) -> None:
    """Add the ``eval`` command to ``app``."""

    @app.command("eval", epilog=_EPILOG)
    @click.argument("truth", type=click.Path(path_type=Path))
    @click.argument("parsed", type=click.Path(path_type=Path))
    @click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."
    )
    def evaluate(truth: Path, parsed: Path, as_json: bool) -> None:
        """Score PARSED against TRUTH with the Loghub-2.0 metrics GA, PA, FGA and FTA.

        TRUTH is a Loghub *_structured(_corrected).csv; PARSED a Loghub-style
        *_structured.csv (e.g. from `logpipe parse --out`).
        """
        from logpipe.evaluation import evaluate_files  # noqa: PLC0415 - only eval needs it

        scores, aligned = evaluate_files(truth, parsed)
        if as_json:
            payload = {
                "truth": str(truth),
                "parsed": str(parsed),
                "aligned_by": aligned.aligned_by,
                **scores.as_dict(),
            }
            click.echo(json.dumps(payload, sort_keys=True))
        else:
            _render(scores, aligned, truth, parsed)
