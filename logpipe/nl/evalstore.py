"""A log store for execution accuracy: the Loghub samples under the labels the questions use.

The NL2LogQL queries select streams such as ``{application="openssh-us-east",
hostname="LabSZ-us-east"}`` or ``{application="hdfs-eu-west", component="dfs.FSNamesystem"}``.
The store built here holds, for every application (and deployment label such as
``hostname``) that the given queries name, a copy of that family's Loghub 2k sample, each
line labelled from its own header (``component``, ``log_level``, ``log_file_type``; see
:mod:`logpipe.nl.loghub`). Which applications exist is read from the queries, so gold and
predicted queries run against the streams a real deployment of those applications would
have.

Times: each system's lines keep their spacing but are shifted to end at one anchor, so a
query window ending at the anchor sees every system's most recent data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from logpipe.labels import MatchOp
from logpipe.logql import ast
from logpipe.nl.loghub import FAMILY_SYSTEMS, SystemLogs, load_system
from logpipe.nl.prompt import Schema
from logpipe.nl.tree import selector_matchers
from logpipe.store import DEFAULT_TENANT, Store

__all__ = [
    "ANCHOR_NS",
    "EvalStore",
    "build_store",
    "deployments",
    "load_families",
    "loghub_schema",
    "stream_label_sets",
]

ANCHOR_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z: where every system's data ends


def deployments(queries: Iterable[ast.Expr], systems: Mapping[str, SystemLogs]) -> dict[
    str, list[dict[str, str]]
]:  # fmt: skip
    """Per family, the deployment label sets the queries name: ``application`` plus each
    deployment label (``hostname`` for OpenSSH) the same selector fixes to a value that no
    line carries. Sorted, without duplicates."""
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for expr in queries:
        matchers = [m for m in selector_matchers(expr) if m.op == MatchOp.EQ]
        apps = [m.value for m in matchers if m.name == "application"]
        for app in apps:
            family = app.split("-", 1)[0].lower()
            logs = systems.get(family)
            if logs is None:
                continue
            values = logs.label_values()
            labels = {"application": app}
            for m in matchers:
                if m.name in logs.spec.deployment_labels and m.value not in values.get(m.name, ()):
                    labels[m.name] = m.value
            found.setdefault(family, set()).add(tuple(sorted(labels.items())))
    return {family: [dict(items) for items in sorted(sets)] for family, sets in found.items()}


def stream_label_sets(
    systems: Mapping[str, SystemLogs], label_sets: Mapping[str, Sequence[Mapping[str, str]]]
) -> list[dict[str, str]]:
    """The label sets of the streams :func:`build_store` creates, without building it: each
    deployment label set over each distinct label set of its family's lines."""
    streams: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for family in sorted(label_sets):
        line_sets = {tuple(sorted(labels.items())) for labels in systems[family].labels}
        for deployment in label_sets[family]:
            for line_labels in sorted(line_sets):
                labels = {**dict(line_labels), **deployment}
                streams.setdefault(tuple(sorted(labels.items())), labels)
    return [streams[k] for k in sorted(streams)]


def loghub_schema(
    systems: Mapping[str, SystemLogs], label_sets: Mapping[str, Sequence[Mapping[str, str]]]
) -> Schema:
    """What :func:`~logpipe.nl.prompt.schema_from_store` would read from the store that
    :func:`build_store` builds (label values and streams), plus the systems' templates:
    training prompts see the same kind of schema as evaluated ones."""
    streams = stream_label_sets(systems, label_sets)
    values: dict[str, set[str]] = {}
    for stream in streams:
        for name, value in stream.items():
            values.setdefault(name, set()).add(value)
    templates = [t.template for family in sorted(label_sets) for t in systems[family].templates]
    return Schema({n: sorted(v) for n, v in sorted(values.items())}, templates, streams=streams)


@dataclass
class EvalStore:
    """The built store, its data's time range, and what was ingested."""

    store: Store
    start_ns: int
    end_ns: int
    streams: int = 0
    lines: int = 0
    label_values: dict[str, list[str]] = field(default_factory=dict)


def load_families(data_dir: str | Path, families: Sequence[str]) -> dict[str, SystemLogs]:
    """The Loghub system of each family (``openssh`` -> OpenSSH...)."""
    return {f: load_system(data_dir, FAMILY_SYSTEMS[f]) for f in families if f in FAMILY_SYSTEMS}


def build_store(
    root: str | Path,
    systems: Mapping[str, SystemLogs],
    label_sets: Mapping[str, Sequence[Mapping[str, str]]],
    *,
    anchor_ns: int = ANCHOR_NS,
    tenant: str = DEFAULT_TENANT,
) -> EvalStore:
    """Ingest each family's lines once per deployment label set into a store at ``root``."""
    store = Store(root)
    start = anchor_ns
    streams = lines = 0
    names: dict[str, set[str]] = {}
    for family in sorted(label_sets):
        logs = systems[family]
        ts = logs.ts_ns - int(logs.ts_ns.max()) + anchor_ns
        start = min(start, int(ts.min()))
        groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for i, labels in enumerate(logs.labels):
            groups.setdefault(tuple(sorted(labels.items())), []).append(i)
        for deployment in label_sets[family]:
            for line_labels, rows in groups.items():
                labels = {**dict(line_labels), **deployment}
                index = np.asarray(rows)
                store.ingest(tenant, labels, ts[index], [logs.lines[r].encode() for r in rows])
                streams += 1
                lines += len(rows)
                for name, value in labels.items():
                    names.setdefault(name, set()).add(value)
    values = {name: sorted(v) for name, v in sorted(names.items())}
    return EvalStore(store, start, anchor_ns + 1, streams, lines, values)
