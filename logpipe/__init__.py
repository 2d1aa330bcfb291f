"""logpipe: a log analytics pipeline over Arrow record batches.

The stages (ingest, parse, archive, query, detect, ask) share one record schema,
:mod:`logpipe.records`; see ``../shared/DESIGN.md`` for the map.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
