"""PLACEHOLDER ``logpipe parse`` (replaced by the real command)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("parse")
    def parse(paths: list[str]) -> None:
        """Mine templates from log files."""
        typer.echo(f"parse {paths}")
