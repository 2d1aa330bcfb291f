"""``logpipe serve``: the daemon (sources → pipeline → store, and the Loki API)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["register"]

_HELP = """Run the daemon: consume Kafka topics and/or tail files into the store, and serve
Loki's HTTP API (queries, push, /ready, /live, /metrics) from the same process.

Without --config it runs the embedded default (`logpipe config default` prints it): tail
samples/daemon/*.log into .run/store and serve on 127.0.0.1:3100. LOGPIPE_<SECTION>__<KEY>
environment variables override the file (e.g. LOGPIPE_SERVER__PORT=3200). SIGTERM or
Ctrl-C drains (every line read is stored and its position committed) and exits 0.

\b
Examples:
  logpipe serve
  logpipe serve --config deploy/logpipe.toml
  LOGPIPE_SERVER__PORT=3200 logpipe serve --config deploy/logpipe.toml
"""


def register(app: click.Group) -> None:
    """Add the ``serve`` command to ``app``."""

    @app.command("serve", help=_HELP)
    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="TOML config file (default: the embedded default).")  # fmt: skip
    @click.option("--quiet", is_flag=True, help="Do not print what to try next on start.")
    def serve(config_path: Path | None, quiet: bool) -> None:
        from logpipe.config import load_config  # noqa: PLC0415
        from logpipe.daemon import Daemon, next_steps  # noqa: PLC0415
        from logpipe.logsetup import setup_logging  # noqa: PLC0415

        config = load_config(config_path)
        setup_logging(config.logging.format, config.logging.level)
        daemon = Daemon(config)

        def started(url: str | None) -> None:
            if not quiet and url is not None:
                sys.stdout.write(next_steps(url, config) + "\n")
                sys.stdout.flush()

        daemon.run(started)
