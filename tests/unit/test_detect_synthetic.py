"""The synthetic relational-anomaly generator: seeded, and anomalous only in its relations."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from logpipe.detect.datasets import synthetic_from_log
from logpipe.detect.synthetic import ANOMALY_KINDS, SyntheticConfig, SyntheticLog, generate
from logpipe.errors import UsageError

CONFIG = SyntheticConfig(sessions=400, anomaly_rate=0.1, seed=11)

_ENTITIES = {
    "user": re.compile(r"(?:for (?:user )?|user=)([a-z]+\.[a-z]+)"),
    "ip": re.compile(r"from (\d+\.\d+\.\d+\.\d+)"),
    "host": re.compile(r"(?:host=| on )([a-z]+\.prod\.internal)"),
    "service": re.compile(r"(?:upstream=|service=)([a-z]+-api)"),
    "table": re.compile(r"table=(\S+)"),
}


@pytest.fixture(scope="module")
def log() -> SyntheticLog:
    return generate(CONFIG)


def _entities(log: SyntheticLog) -> dict[str, dict[str, set[str]]]:
    """Per session: each entity type's values, read from the raw lines."""
    out: dict[str, dict[str, set[str]]] = {}
    for line, sid in zip(log.lines, log.line_sessions, strict=True):
        found = out.setdefault(sid, {k: set() for k in _ENTITIES})
        for kind, regex in _ENTITIES.items():
            found[kind].update(regex.findall(line))
    return out


def _pairs(entities: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Which (user|service, entity) relations a session holds."""
    pairs: set[tuple[str, str]] = set()
    for user in entities["user"]:
        for kind in ("ip", "host", "service"):
            pairs.update((f"user={user}", f"{kind}={v}") for v in entities[kind])
    return pairs


def test_same_seed_same_bytes_other_seed_other_log(log: SyntheticLog) -> None:
    again = generate(CONFIG)
    assert again.lines == log.lines and again.labels == log.labels
    assert generate(SyntheticConfig(sessions=400, anomaly_rate=0.1, seed=12)).lines != log.lines
    assert sum(log.labels.values()) == 40
    assert set(log.kinds.values()) == set(ANOMALY_KINDS)
    stamps = [line[:23] for line in log.lines]
    assert stamps == sorted(stamps)  # one log, in time order


def test_anomalous_sessions_have_the_sequences_and_counts_of_normal_ones(
    log: SyntheticLog,
) -> None:
    data = synthetic_from_log(log)
    assert len(data.windows) == 400 and data.counts["unkeyed_lines"] == 0
    assert data.counts["unmatched_lines"] == 0
    normal_sequences = {tuple(e.event_id for e in w.events) for w in data.windows if w.label == 0}
    normal_counts = {
        frozenset(Counter(e.event_id for e in w.events).items())
        for w in data.windows
        if w.label == 0
    }
    anomalous = [w for w in data.windows if w.label == 1]
    assert len(anomalous) == 40
    for w in anomalous:
        assert tuple(e.event_id for e in w.events) in normal_sequences, w.key
        assert frozenset(Counter(e.event_id for e in w.events).items()) in normal_counts
    # entity values are parameters, not event ids: few templates for many entities
    assert len(data.templates) <= 8


def test_anomalies_break_exactly_a_relation_that_normal_sessions_never_hold(
    log: SyntheticLog,
) -> None:
    entities = _entities(log)
    normal = [entities[s] for s, label in log.labels.items() if label == 0]
    normal_pairs = set().union(*(_pairs(e) for e in normal))
    normal_values = {f"{kind}={v}" for e in normal for kind, values in e.items() for v in values}
    service_tables = {
        (f"service={s}", f"table={t}")
        for line, sid in zip(log.lines, log.line_sessions, strict=True)
        if log.labels[sid] == 0
        for s, t in re.findall(r"service=(\S+) table=(\S+)", line)
    }
    assert len(service_tables) == 8 * 3  # each service reads its own three tables
    for sid, (left, right) in log.broken.items():
        kind = log.kinds[sid]
        assert right in normal_values, (sid, right)  # the entity exists in normal behaviour
        if kind == "foreign_table":
            assert (left, right) not in service_tables
        else:
            assert (left, right) not in normal_pairs, (sid, kind, left, right)
    # normal relations are stable: every address belongs to exactly one user
    owners: dict[str, set[str]] = {}
    for e in normal:
        for ip in e["ip"]:
            owners.setdefault(ip, set()).update(e["user"])
    assert all(len(users) == 1 for users in owners.values())


def test_write_lines_and_labels(tmp_path: Path, log: SyntheticLog) -> None:
    small = generate(SyntheticConfig(sessions=20, anomaly_rate=0.25, seed=1))
    log_path, labels_path = tmp_path / "synthetic.log", tmp_path / "labels.jsonl"
    small.write(log_path, labels_path)
    assert log_path.read_text(encoding="utf-8").splitlines() == list(small.lines)
    rows = [json.loads(r) for r in labels_path.read_text(encoding="utf-8").splitlines()]
    assert {r["sid"]: r["label"] for r in rows} == small.labels
    assert all((r["kind"] is None) == (r["label"] == 0) for r in rows)
    assert small.line_labels().sum() == sum(1 for s in small.line_sessions if small.labels[s] == 1)


@pytest.mark.parametrize(
    "bad",
    [
        SyntheticConfig(sessions=0),
        SyntheticConfig(teams=1),
        SyntheticConfig(hosts_per_user=5),
        SyntheticConfig(kinds=("wrong_colour",)),
        SyntheticConfig(anomaly_rate=1.5),
    ],
)
def test_bad_configs_are_usage_errors(bad: SyntheticConfig) -> None:
    with pytest.raises(UsageError):
        generate(bad)
