"""``logpipe config check|schema|docs|default``: validate a daemon config before deploying it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from logpipe.config import Config

__all__ = ["register"]

_HELP = """Check, describe or print the daemon's TOML configuration.

\b
Examples:
  logpipe config check deploy/logpipe.toml
  logpipe config schema > logpipe.schema.json
  logpipe config docs > docs/CONFIG.md
  logpipe config default > logpipe.toml
"""


def _detect_summary(cfg: Config) -> str:
    d = cfg.detect
    if not d.enabled:
        return "off"
    windows = (
        f"time windows of {d.window_secs:g} s"
        if d.session_key is None
        else f"sessions by {d.session_key!r}"
    )
    return f"{d.model_dir}, {windows}, idle {d.idle_secs:g} s"


def register(app: click.Group) -> None:
    """Add the ``config`` command group to ``app``."""

    @app.group("config", help=_HELP)
    def config() -> None:
        pass

    @config.command("check")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--json", "as_json", is_flag=True, help="Print the resolved config as JSON.")
    def check(file: Path, as_json: bool) -> None:
        """Validate FILE (with LOGPIPE_* overrides): exit 0 and a summary, or 2 and every
        error with its key's dotted path."""
        from logpipe.config import load_config  # noqa: PLC0415

        cfg = load_config(file)
        if as_json:
            sys.stdout.write(cfg.model_dump_json(indent=2) + "\n")
            return
        s = cfg.sources
        srv = f"http://{cfg.server.host}:{cfg.server.port}" if cfg.server.enabled else "off"
        lines = [
            f"{file}: ok",
            f"  store:   {cfg.store.root} (tenant {cfg.store.tenant})",
            *(
                f"  kafka:   {k.name}: {','.join(k.topics)} @ {k.bootstrap} group {k.group}"
                for k in s.kafka
            ),
            *(f"  files:   {f.name}: {' '.join(f.paths)}" for f in s.files),
            *([f"  stdin:   {s.stdin.name}"] if s.stdin else []),
            *(f"  sink:    {k.name}: {k.topic} @ {k.bootstrap}" for k in cfg.sinks.kafka),
            f"  parse:   {'templates' if cfg.parse.enabled else 'off'}",
            f"  server:  {srv}",
            f"  logging: {cfg.logging.format}, {cfg.logging.level}",
            f"  detect:  {_detect_summary(cfg)}",
        ]
        if cfg.detect.alerts:
            sinks = ", ".join(f"{a.name} ({a.type})" for a in cfg.detect.alerts)
            lines.append(f"  alerts:  {sinks}")
        sys.stdout.write("\n".join(lines) + "\n")

    @config.command("schema")
    def schema() -> None:
        """Print the config's JSON Schema (for editors and CI)."""
        from logpipe.config import Config  # noqa: PLC0415

        sys.stdout.write(json.dumps(Config.model_json_schema(), indent=2) + "\n")

    @config.command("docs")
    def docs() -> None:
        """Print the key reference (docs/CONFIG.md) generated from the schema."""
        from logpipe.config_docs import render_config_docs  # noqa: PLC0415

        sys.stdout.write(render_config_docs())

    @config.command("default")
    def default() -> None:
        """Print the embedded default config (what `logpipe serve` runs without --config)."""
        from logpipe.config import DEFAULT_CONFIG_TOML  # noqa: PLC0415

        sys.stdout.write(DEFAULT_CONFIG_TOML)
