"""A tiny made-up log system for the NL tests: templates, labelled lines, times.

Why made up: the default suite must not need ../shared/data; this system has the same
shape as a Loghub one (templates with sample values, header labels), small enough to build
a store from in a fraction of a second.
"""

from __future__ import annotations

import numpy as np

from logpipe.nl.loghub import LabelRule, SystemLogs, SystemSpec, TemplateInfo
from logpipe.parsing.params import extract_params
from logpipe.store import Store

SPEC = SystemSpec(
    "Webshop", "webshop", (LabelRule("log_level", "Level"), LabelRule("hostname", "Host")),
    deployment_labels=("hostname",),
)  # fmt: skip
TEMPLATES = (
    ("E1", "Failed login for user <*> from <*> port <*>"),
    ("E2", "Order <*> paid in <*> ms status <*>"),
    ("E3", "Cache flushed"),
)
SECOND = 1_000_000_000


def _line(i: int) -> tuple[str, str, str]:
    """(event id, content, level) of line ``i``: a fixed cycle, so tests can count."""
    kind = i % 4
    if kind in (0, 1):
        return "E1", f"Failed login for user u{i % 3} from 10.0.0.{i % 5} port {4000 + i}", "WARN"
    if kind == 2:
        return "E2", f"Order o{i} paid in {10 + i % 7} ms status {200 if i % 8 else 500}", "INFO"
    return "E3", "Cache flushed", "INFO"


def webshop_logs(n: int = 120, host: str = "web1") -> SystemLogs:
    """``n`` lines one second apart; labels ``log_level`` and ``hostname``."""
    infos = {eid: TemplateInfo(eid, text) for eid, text in TEMPLATES}
    lines, labels, events = [], [], []
    for i in range(n):
        eid, content, level = _line(i)
        lines.append(f"2024-05-01 10:{i // 60:02d}:{i % 60:02d} {level} [{host}] {content}")
        labels.append({"log_level": level, "hostname": host})
        events.append(eid)
        info = infos[eid]
        info.count += 1
        info.label_values.setdefault("log_level", set()).add(level)
        info.label_values.setdefault("hostname", set()).add(host)
        if len(info.samples) < 20:
            info.samples.append(extract_params(info.template, content))
    ts = np.arange(n, dtype=np.int64) * SECOND + 1_714_557_600 * SECOND
    return SystemLogs(SPEC, lines, labels, ts, list(infos.values()), events)


def webshop_store(root: object, hosts: tuple[str, ...] = ("web1", "web2"), n: int = 120) -> tuple[
    Store, int
]:  # fmt: skip
    """A store of the webshop's lines, one stream per (host, level) under ``app="webshop"``;
    and the end of its data (ns), where queries should end."""
    store = Store(str(root))
    end = 0
    for host in hosts:
        logs = webshop_logs(n, host)
        rows: dict[str, list[int]] = {}
        for i, labels in enumerate(logs.labels):
            rows.setdefault(labels["log_level"], []).append(i)
        for level, index in sorted(rows.items()):
            store.ingest("fake", {"app": "webshop", "host": host, "level": level},
                         logs.ts_ns[index], [logs.lines[i].encode() for i in index])  # fmt: skip
        end = max(end, int(logs.ts_ns.max()) + 1)
    return store, end
