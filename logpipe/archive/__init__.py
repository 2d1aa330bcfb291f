"""Logzip-style archives: lossless, searchable, segment by segment (see docs/FORMAT.md)."""
