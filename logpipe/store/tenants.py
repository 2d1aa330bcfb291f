"""Tenant ids (Loki's ``X-Scope-OrgID``): what is valid, and the default one.

Each tenant's data lives in its own directory tree, so the id becomes a path component;
Loki's rules (at most 150 characters of ``[A-Za-z0-9!-_.*'()]``, not ``.`` or ``..``) keep
it a safe one: no separator, no parent reference, nothing a shell or URL would mangle.
"""

from __future__ import annotations

import re

from logpipe.errors import StoreError

__all__ = ["DEFAULT_TENANT", "MAX_TENANT_LENGTH", "validate_tenant"]

#: The tenant Loki uses when auth is disabled (``auth_enabled: false``).
DEFAULT_TENANT = "fake"
MAX_TENANT_LENGTH = 150
_TENANT = re.compile(r"[A-Za-z0-9!\-_.*'()]+")


def validate_tenant(tenant: object) -> str:
    """``tenant`` if it is a valid id, else :class:`StoreError` saying why."""
    if not isinstance(tenant, str):
        raise StoreError(f"tenant id must be a string, not {type(tenant).__name__}")
    if not tenant:
        raise StoreError("tenant id is empty")
    if len(tenant) > MAX_TENANT_LENGTH:
        raise StoreError(
            f"tenant id is {len(tenant)} characters long; the limit is {MAX_TENANT_LENGTH}"
        )
    if tenant in (".", ".."):
        raise StoreError(f"tenant id {tenant!r} is not allowed")
    if not _TENANT.fullmatch(tenant):
        bad = next(c for c in tenant if not _TENANT.fullmatch(c))
        raise StoreError(
            f"tenant id {tenant!r} contains {bad!r}; allowed are letters, digits and !-_.*'()"
        )
    return tenant
