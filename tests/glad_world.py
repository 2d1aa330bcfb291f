"""A tiny seeded login system for the GLAD tests: users, their own addresses, sessions.

Each user has one address of their own; a session is a login from it, a few requests and a
logout, always the same four templates in the same order. Two planted anomaly kinds:

* ``relational``: a user works from *another user's* address for the whole session: the
  templates, their order and their counts are those of a normal session;
* ``unseen``: a normal session with one line of a template never seen in training.
"""

from __future__ import annotations

import numpy as np

from logpipe.detect.windows import Event, Window

LOGIN = "Accepted password for <*> from <*> port <*> ssh2"
REQUEST = "GET <*> from <*> user=<*> status=<*> in <*> ms"
LOGOUT = "session closed for user <*>"
UNSEEN = "kernel panic: corrupted page table entry at <*>, halting cpu <*>"
RESOURCES = ("/api/orders", "/api/items", "/api/cart", "/api/users")
EVENT_IDS = {LOGIN: "E1", REQUEST: "E2", LOGOUT: "E3", UNSEEN: "E4"}


def user_address(user: int) -> str:
    return f"10.0.{user // 8}.{10 + user % 8}"


def session(
    rng: np.random.Generator,
    key: str,
    user: int,
    *,
    address: str | None = None,
    unseen_line: bool = False,
    start_ns: int = 0,
    label: int = 0,
) -> Window:
    """One session of ``user`` (from ``address``, default the user's own)."""
    name = f"user{user:02d}"
    ip = address or user_address(user)
    lines: list[tuple[str, tuple[str, ...]]] = [
        (LOGIN, (name, ip, str(int(rng.integers(30_000, 60_000))))),
    ]
    for _ in range(int(rng.integers(2, 5))):
        resource = RESOURCES[int(rng.integers(len(RESOURCES)))]
        millis = str(int(rng.integers(5, 400)))
        lines.append((REQUEST, (resource, ip, name, "200", millis)))
    if unseen_line:
        lines.insert(2, (UNSEEN, (f"0x{int(rng.integers(1 << 30, 1 << 31)):08x}", "3")))
    lines.append((LOGOUT, (name,)))
    events = tuple(
        Event(start_ns + i * 1_000_000, EVENT_IDS[t], t, p, i + 1) for i, (t, p) in enumerate(lines)
    )
    return Window(key, events[0].ts_ns, events[-1].ts_ns, events, 0, label)


def world(
    seed: int = 0, *, users: int = 12, train: int = 160, validation: int = 40, test: int = 60
) -> tuple[list[Window], list[Window], list[Window]]:
    """Normal train and validation windows, and test windows with 4 + 4 planted anomalies."""
    rng = np.random.default_rng(seed)

    def normal(prefix: str, n: int) -> list[Window]:
        return [session(rng, f"{prefix}{i}", int(rng.integers(users))) for i in range(n)]

    tests = normal("test", test)
    for i in range(4):
        user = int(rng.integers(users))
        other = (user + 1 + int(rng.integers(users - 1))) % users
        tests.append(session(rng, f"relational{i}", user, address=user_address(other), label=1))
        tests.append(
            session(rng, f"unseen{i}", int(rng.integers(users)), unseen_line=True, label=1)
        )
    return normal("train", train), normal("validation", validation), tests
