"""A pytest helper that fails any attempt to reach beyond loopback (connect or DNS lookup).

Why: the model loader must never download; this proves it on the real code path rather than
trusting environment variables. Loopback stays allowed (test servers, brokers).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkAttemptError(AssertionError):
    """Raised (and recorded) when code under test reaches for the network."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every non-loopback connect or name lookup raises and is recorded in the yielded list."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(what: str, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) and address else address
        if isinstance(address, str | bytes) and not isinstance(host, tuple):
            return  # an AF_UNIX path: local by definition
        if not _is_loopback(host):
            attempts.append(f"{what} {address!r}")
            raise NetworkAttemptError(f"network access attempted: {what} {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family != socket.AF_UNIX:
            check("connect", address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != socket.AF_UNIX:
            check("connect_ex", address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            check("getaddrinfo", (host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
