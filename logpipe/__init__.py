"""logpipe: a log analytics pipeline over Arrow record batches.

The stages (ingest, parse, archive, query, detect, ask) share one record schema,
:mod:`logpipe.records`; see ``../shared/DESIGN.md`` for the map.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

__all__ = ["__version__"]

# models/ and connectors/ live at the top of the repository and install as logpipe.models
# and logpipe.connectors (pyproject's package-dir). Run from a source checkout
# (PYTHONPATH=<checkout>, as the tests and benchmarks are), they are found beside this
# package: a checkout's own copies, not those of whichever checkout a venv was installed
# from. An installed wheel has them inside the package and never takes this branch.
_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "connectors" / "__init__.py").is_file():
    __path__.append(str(_root))
del _Path, _root
