"""A seeded generator of *relational* anomalies: normal sequences and counts, wrong relations.

Why: in the usual benchmarks (full HDFS, BGL) anomalies mostly show up as unusual events or
counts, which count and sequence models (PCA, IsolationForest, DeepLog) already catch. What
they cannot see by construction is a *relation* that should not exist: a user logging in
from an address that belongs to someone else, a service reading a table it never touches.
This generator makes a log where that is the only difference, so a benchmark can tell a
relational detector (GLAD) from the baselines.

The system: users in teams log in over SSH to hosts and call services through an HTTP
gateway; each service queries its own tables. One **session** (key ``sid=...`` in every
line) is::

    sshd: Accepted publickey for <user> from <ip> port <port> ssh2 host=<host> sid=<sid>
    sshd: session opened for user <user> on <host> sid=<sid>
    ┌ k requests (1..max_requests), each:
    │ gateway: <GET|POST> <path> from <ip> user=<user> upstream=<service> status=200 ...
    └ app: query served for service=<service> table=<table> rows=<n> ... (1 or 2 times)
    sshd: session closed for user <user> on <host> sid=<sid>

**Normal relations** are stable: each user has their own ``ips_per_user`` addresses (no
address is shared), logs in to ``hosts_per_user`` hosts of their team, calls the
``services_per_team`` services of their team, and each service queries only its own
``tables_per_service`` tables. Paths name a resource of the service called.

**An anomalous session** takes the *shape* of a normal session of the same log picked at
random, its twin (number of requests, method and number of queries of each: so the same
templates, in the same order, with the same counts), is otherwise drawn like a normal
session, and then has *one* relation broken with an entity that exists elsewhere in the log:

* ``foreign_ip``: the user connects from another user's address (login and gateway lines);
* ``foreign_host``: the user logs in to a host of another team;
* ``foreign_service``: one request goes to a service (and one of its paths and tables) that
  the user's team never calls;
* ``foreign_table``: one query of a service reads a table of another service.

So the event sequence (hence the event-count vector) of every anomalous session is that of
a normal session of the log (the tests check it): count and sequence models cannot separate
them except by chance. Entity names are chosen so that the template miner turns them into
parameters (none is a bare word that could become a word-slot event id).

Everything is drawn from one ``numpy.random.Generator`` seeded by :attr:`SyntheticConfig.seed`:
the same config gives the same lines, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from logpipe.errors import UsageError

__all__ = [
    "ANOMALY_KINDS",
    "SESSION_KEY_PATTERN",
    "SYNTHETIC_FORMAT",
    "SyntheticConfig",
    "SyntheticLog",
    "generate",
]

SYNTHETIC_FORMAT = "<Date> <Time> <Level> <Component>: <Content>"
"""The log format of the generated lines (Date ``2024-03-01``, Time ``08:00:01.250``)."""

SESSION_KEY_PATTERN = r"sid=(?P<key>[A-Za-z0-9-]+)"
"""The regex (one group ``key``) that finds a line's session id in its content."""

ANOMALY_KINDS = ("foreign_ip", "foreign_host", "foreign_service", "foreign_table")

_FIRST = (  # noqa: SIM905 - word lists read better as text
    "alice bruno chloe dmitri elena farid greta hiro ines jonas kemal lena marco "
    "nadia omar priya quinn rosa sven tara umar vera wade xenia yusuf zoe"
).split()
_LAST = (  # noqa: SIM905 - word lists read better as text
    "moreau lindqvist okafor tanaka rossi novak haddad silva berg kowalski ivanova "
    "dubois mensah larsen petrov quispe"
).split()
_HOSTS = (  # noqa: SIM905 - word lists read better as text
    "vega rigel deneb altair sirius castor pollux mira antares spica arcturus capella "
    "procyon bellatrix alnitak mintaka saiph electra maia atlas"
).split()
_SERVICES = (  # noqa: SIM905 - word lists read better as text
    "orders billing catalog inventory payments shipping accounts search reviews "
    "pricing loyalty fraud"
).split()
_TABLES = (  # noqa: SIM905 - word lists read better as text
    "items events ledger snapshots history audit cache refs rules quotas tokens jobs"
).split()
_RESOURCES = (  # noqa: SIM905 - a word list reads better as text
    "records entries lists summaries details batches"
).split()


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, shape and seed of a generated log. Defaults: ~2,000 sessions, 5% anomalous."""

    sessions: int = 2000
    anomaly_rate: float = 0.05
    teams: int = 4
    users: int = 40
    ips_per_user: int = 2
    hosts_per_team: int = 3
    hosts_per_user: int = 2
    services_per_team: int = 2
    tables_per_service: int = 3
    max_requests: int = 4
    mean_gap_s: float = 20.0
    start_ns: int = 1_709_280_000 * 1_000_000_000  # 2024-03-01T08:00:00Z
    kinds: tuple[str, ...] = ANOMALY_KINDS
    seed: int = 7

    def check(self) -> None:
        """Raise :class:`UsageError` for a config that cannot make the promised log."""
        if self.sessions < 1 or not 0.0 <= self.anomaly_rate <= 1.0:
            raise UsageError("synthetic: sessions >= 1 and anomaly_rate in [0, 1] required")
        if self.teams < 2:
            raise UsageError("synthetic: at least 2 teams (anomalies borrow from another team)")
        if self.users < self.teams or self.users > len(_FIRST) * len(_LAST):
            raise UsageError(f"synthetic: users must be in [teams, {len(_FIRST) * len(_LAST)}]")
        if self.teams * self.hosts_per_team > len(_HOSTS) or self.hosts_per_user < 1:
            raise UsageError(f"synthetic: at most {len(_HOSTS)} hosts (teams * hosts_per_team)")
        if self.hosts_per_user > self.hosts_per_team:
            raise UsageError("synthetic: hosts_per_user cannot exceed hosts_per_team")
        if self.teams * self.services_per_team > len(_SERVICES) or self.services_per_team < 1:
            raise UsageError(f"synthetic: at most {len(_SERVICES)} services in all")
        if not 1 <= self.tables_per_service <= len(_TABLES):
            raise UsageError(f"synthetic: tables_per_service must be in [1, {len(_TABLES)}]")
        if self.ips_per_user < 1 or self.max_requests < 1 or self.mean_gap_s <= 0:
            raise UsageError("synthetic: ips_per_user, max_requests, mean_gap_s must be > 0")
        unknown = set(self.kinds) - set(ANOMALY_KINDS)
        if unknown or not self.kinds:
            raise UsageError(f"synthetic: kinds must be among {', '.join(ANOMALY_KINDS)}")


@dataclass(frozen=True)
class _World:
    """Who relates to what in normal behaviour."""

    user_team: list[int]
    user_ips: list[list[str]]
    user_hosts: list[list[str]]
    team_hosts: list[list[str]]
    team_services: list[list[str]]
    service_tables: dict[str, list[str]]
    service_resources: dict[str, list[str]]
    names: list[str]


@dataclass
class _Line:
    ts_ns: int
    level: str
    component: str
    content: str


@dataclass(frozen=True)
class SyntheticLog:
    """The generated log: raw lines in time order, and the truth about each session.

    ``line_sessions[i]`` is the session id of ``lines[i]``; ``labels`` maps every session id
    to 0 (normal) or 1 (anomalous); ``kinds`` and ``broken`` say, for anomalous sessions,
    which relation was broken and which pair of entities is the wrong relation (for
    checking explanations), e.g. ``("user=alice.moreau", "ip=10.21.3.7")``.
    """

    lines: tuple[str, ...]
    line_sessions: tuple[str, ...]
    labels: dict[str, int]
    kinds: dict[str, str] = field(default_factory=dict)
    broken: dict[str, tuple[str, str]] = field(default_factory=dict)
    config: SyntheticConfig = field(default_factory=SyntheticConfig)

    def line_labels(self) -> np.ndarray:
        """0/1 per line: the label of its session (for time-window grouping)."""
        return np.fromiter(
            (self.labels[s] for s in self.line_sessions), dtype=np.int64, count=len(self.lines)
        )

    def write(self, path: str | Path, labels_path: str | Path | None = None) -> None:
        """Write the lines (UTF-8, ``\\n`` ends each) and optionally the session truth as
        JSON lines (``{"sid", "label", "kind", "broken"}``), both via a temp file."""
        _write_atomic(Path(path), "".join(line + "\n" for line in self.lines))
        if labels_path is not None:
            rows = [
                json.dumps(
                    {
                        "sid": sid,
                        "label": label,
                        "kind": self.kinds.get(sid),
                        "broken": list(self.broken[sid]) if sid in self.broken else None,
                    }
                )
                for sid, label in self.labels.items()
            ]
            _write_atomic(Path(labels_path), "".join(r + "\n" for r in rows))

    def describe(self) -> dict[str, object]:
        """Sizes and the config, for reports."""
        return {
            "lines": len(self.lines),
            "sessions": len(self.labels),
            "anomalous": sum(self.labels.values()),
            "kinds": {k: sum(1 for v in self.kinds.values() if v == k) for k in ANOMALY_KINDS},
            "config": asdict(self.config),
        }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _world(cfg: SyntheticConfig, rng: np.random.Generator) -> _World:
    pairs = rng.permutation(len(_FIRST) * len(_LAST))[: cfg.users]
    names = [f"{_FIRST[p // len(_LAST)]}.{_LAST[p % len(_LAST)]}" for p in pairs.tolist()]
    user_team = [u % cfg.teams for u in range(cfg.users)]
    # one /16 per team, addresses never shared between users
    user_ips = [
        [
            f"10.{20 + user_team[u]}.{u // 8 + 1}.{(u % 8) * 16 + k + 2}"
            for k in range(cfg.ips_per_user)
        ]
        for u in range(cfg.users)
    ]
    hosts = [f"{h}.prod.internal" for h in rng.permutation(_HOSTS).tolist()]
    team_hosts = [
        hosts[t * cfg.hosts_per_team : (t + 1) * cfg.hosts_per_team] for t in range(cfg.teams)
    ]
    user_hosts = [
        [str(h) for h in rng.choice(team_hosts[user_team[u]], cfg.hosts_per_user, replace=False)]
        for u in range(cfg.users)
    ]
    services = [f"{s}-api" for s in rng.permutation(_SERVICES).tolist()]
    team_services = [
        services[t * cfg.services_per_team : (t + 1) * cfg.services_per_team]
        for t in range(cfg.teams)
    ]
    service_tables: dict[str, list[str]] = {}
    service_resources: dict[str, list[str]] = {}
    for s in (s for team in team_services for s in team):
        base = s.removesuffix("-api")
        chosen = rng.choice(len(_TABLES), cfg.tables_per_service, replace=False).tolist()
        service_tables[s] = [f"{base}_db.{_TABLES[i]}" for i in chosen]
        service_resources[s] = [
            f"{base}/{r}" for r in rng.choice(_RESOURCES, 2, replace=False).tolist()
        ]
    return _World(
        user_team, user_ips, user_hosts, team_hosts, team_services, service_tables,
        service_resources, names,
    )  # fmt: skip


@dataclass
class _Session:
    """One session's choices; an anomaly rewrites one of them before lines are written."""

    user: int
    ip: str
    host: str
    port: int
    requests: list[tuple[str, str, str, list[str]]]  # method, service, path, tables queried


Shape = tuple[tuple[str, int], ...]
"""A session's shape: per request, the HTTP method and how many queries it makes. The shape
alone fixes the session's template sequence."""


def _draw_shape(cfg: SyntheticConfig, rng: np.random.Generator) -> Shape:
    return tuple(
        ("GET" if rng.random() < 0.7 else "POST", 1 if rng.random() < 0.6 else 2)
        for _ in range(int(rng.integers(1, cfg.max_requests + 1)))
    )


def _draw_session(
    cfg: SyntheticConfig, w: _World, rng: np.random.Generator, shape: Shape
) -> _Session:
    """A normal session of ``shape``: a user, and entities related to them."""
    user = int(rng.integers(cfg.users))
    team = w.user_team[user]
    requests = []
    for method, n_queries in shape:
        service = str(rng.choice(w.team_services[team]))
        path = f"/api/v1/{rng.choice(w.service_resources[service])}/{int(rng.integers(1, 99_999))}"
        tables = [str(rng.choice(w.service_tables[service])) for _ in range(n_queries)]
        requests.append((method, service, path, tables))
    return _Session(
        user=user,
        ip=str(rng.choice(w.user_ips[user])),
        host=str(rng.choice(w.user_hosts[user])),
        port=int(rng.integers(32_768, 61_000)),
        requests=requests,
    )


def _break(
    kind: str, s: _Session, cfg: SyntheticConfig, w: _World, rng: np.random.Generator
) -> tuple[str, str]:
    """Break one relation of ``s`` in place with an entity that exists elsewhere."""
    user_name = w.names[s.user]
    team = w.user_team[s.user]
    if kind == "foreign_ip":
        other = int(rng.choice([u for u in range(cfg.users) if u != s.user]))
        s.ip = str(rng.choice(w.user_ips[other]))
        return f"user={user_name}", f"ip={s.ip}"
    if kind == "foreign_host":
        others = [h for t, hosts in enumerate(w.team_hosts) if t != team for h in hosts]
        s.host = str(rng.choice(others))
        return f"user={user_name}", f"host={s.host}"
    r = int(rng.integers(len(s.requests)))
    method, service, path, tables = s.requests[r]
    if kind == "foreign_service":
        others = [x for t, svcs in enumerate(w.team_services) if t != team for x in svcs]
        new = str(rng.choice(others))
        # the path names a resource of the new service and keeps its request id
        resource = str(rng.choice(w.service_resources[new]))
        new_path = f"/api/v1/{resource}/{path.rsplit('/', 1)[1]}"
        new_tables = [str(rng.choice(w.service_tables[new])) for _ in tables]
        s.requests[r] = (method, new, new_path, new_tables)
        return f"user={user_name}", f"service={new}"
    # foreign_table: one query of the request reads another service's table
    others = [t for svc, ts in w.service_tables.items() if svc != service for t in ts]
    q = int(rng.integers(len(tables)))
    tables = list(tables)
    tables[q] = str(rng.choice(others))
    s.requests[r] = (method, service, path, tables)
    return f"service={service}", f"table={tables[q]}"


def _session_lines(
    s: _Session, sid: str, start_ns: int, w: _World, rng: np.random.Generator
) -> list[_Line]:
    user = w.names[s.user]
    t = start_ns
    out: list[_Line] = []

    def emit(component: str, content: str, level: str = "INFO") -> None:
        nonlocal t
        out.append(_Line(t, level, component, content))
        t += int(rng.integers(20, 1500)) * 1_000_000

    emit(
        "sshd",
        f"Accepted publickey for {user} from {s.ip} port {s.port} ssh2 host={s.host} sid={sid}",
    )
    emit("sshd", f"session opened for user {user} on {s.host} sid={sid}")
    for method, service, path, tables in s.requests:
        size = int(rng.integers(200, 90_000))
        ms = int(rng.integers(2, 400))
        emit(
            "gateway",
            f"{method} {path} from {s.ip} user={user} upstream={service} status=200 "
            f"bytes={size} in {ms} ms sid={sid}",
        )
        for table in tables:
            rows = int(rng.integers(1, 500))
            emit(
                "app",
                f"query served for service={service} table={table} rows={rows} "
                f"in {int(rng.integers(1, 120))} ms sid={sid}",
            )
    emit("sshd", f"session closed for user {user} on {s.host} sid={sid}")
    return out


def _format(line: _Line) -> str:
    secs, ns = divmod(line.ts_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(secs, dt.UTC)
    return (
        f"{stamp:%Y-%m-%d %H:%M:%S}.{ns // 1_000_000:03d} {line.level} {line.component}: "
        f"{line.content}"
    )


def generate(config: SyntheticConfig | None = None) -> SyntheticLog:
    """Generate a log as the module docstring describes; same config, same bytes."""
    cfg = config or SyntheticConfig()
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    world = _world(cfg, rng)
    n_anomalous = round(cfg.sessions * cfg.anomaly_rate)
    anomalous = set(rng.choice(cfg.sessions, n_anomalous, replace=False).tolist())
    starts = cfg.start_ns + np.cumsum(rng.exponential(cfg.mean_gap_s, cfg.sessions) * 1e9).astype(
        np.int64
    )
    shapes = [_draw_shape(cfg, rng) for _ in range(cfg.sessions)]
    normal = [i for i in range(cfg.sessions) if i not in anomalous]
    for i in sorted(anomalous):
        if normal:  # the shape of a normal twin: its very template sequence
            shapes[i] = shapes[normal[int(rng.integers(len(normal)))]]
    labels: dict[str, int] = {}
    kinds: dict[str, str] = {}
    broken: dict[str, tuple[str, str]] = {}
    rows: list[tuple[int, int, int, str, _Line]] = []  # ts, session, position, sid, line
    for i in range(cfg.sessions):
        sid = f"s{i:06d}"
        session = _draw_session(cfg, world, rng, shapes[i])
        labels[sid] = 0
        if i in anomalous:
            kind = cfg.kinds[int(rng.integers(len(cfg.kinds)))]
            broken[sid] = _break(kind, session, cfg, world, rng)
            kinds[sid] = kind
            labels[sid] = 1
        for pos, line in enumerate(_session_lines(session, sid, int(starts[i]), world, rng)):
            rows.append((line.ts_ns, i, pos, sid, line))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return SyntheticLog(
        lines=tuple(_format(r[4]) for r in rows),
        line_sessions=tuple(r[3] for r in rows),
        labels=labels,
        kinds=kinds,
        broken=broken,
        config=cfg,
    )
