"""``python -m tests.fake_cli ARGS``: the real ``logpipe`` CLI with the test framer.

Subprocess tests (stdin, exit codes without tracebacks, peak memory) need a whole process;
this entry point installs :mod:`tests.fakes` first so they do not depend on the real formats
module, which is developed separately.
"""

from __future__ import annotations

import sys

import logpipe.formats
from logpipe.cli import main
from tests.fakes import fake_resolve_framer

if __name__ == "__main__":
    logpipe.formats.resolve_framer = fake_resolve_framer
    sys.exit(main(sys.argv[1:]))
