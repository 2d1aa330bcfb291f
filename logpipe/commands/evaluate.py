"""PLACEHOLDER ``logpipe eval`` (replaced by the real command)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def evaluate(truth: str, parsed: str) -> None:
        """Score parsed output against ground truth."""
        typer.echo(f"eval {truth} {parsed}")
