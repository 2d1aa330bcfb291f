"""Loghub 2k samples as labelled log streams: what the NL feature's data and benchmark see.

The NL2LogQL questions are about OpenStack, OpenSSH and HDFS logs labelled the way a
Promtail/Loki deployment would label them: ``application`` (``openssh-us-east``...), plus
labels read off each line's header (``component``, ``log_level``, ``log_file_type``,
``hostname``). :data:`SYSTEMS` says, per Loghub system, which header field becomes which
label; :func:`load_system` reads a system's raw lines, header fields, timestamps and
templates (``*_structured_corrected.csv`` and ``*_templates_corrected.csv``) from the shared
data directory, by path.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from logpipe.errors import InputError
from logpipe.formats import preset
from logpipe.parsing.params import extract_params
from logpipe.timestamps import fill_forward, timestamps_from_fields

__all__ = [
    "FAMILY_SYSTEMS",
    "SYSTEMS",
    "LabelRule",
    "SystemLogs",
    "SystemSpec",
    "TemplateInfo",
    "load_system",
]


def _file_type(logrecord: str) -> str:
    """``nova-api.log.1.2017-05-16_13:53:08`` -> ``nova-api``."""
    return logrecord.split(".log", 1)[0]


@dataclass(frozen=True)
class LabelRule:
    """Label ``name`` takes header field ``column``, through ``transform`` when given."""

    name: str
    column: str
    transform: Callable[[str], str] | None = None

    def value(self, raw: str) -> str:
        return self.transform(raw) if self.transform is not None else raw


@dataclass(frozen=True)
class SystemSpec:
    """A Loghub system, the application family its streams belong to, its label rules.

    ``deployment_labels`` name where the logs were collected (a host), which a deployment
    sets per application rather than reads off a line: a store may give the same lines
    other values of them.
    """

    system: str
    family: str
    labels: tuple[LabelRule, ...]
    deployment_labels: tuple[str, ...] = ()


SYSTEMS: Mapping[str, SystemSpec] = {
    s.system: s
    for s in (
        SystemSpec("OpenSSH", "openssh", (LabelRule("hostname", "Component"),), ("hostname",)),
        SystemSpec("OpenStack", "openstack", (
            LabelRule("log_file_type", "Logrecord", _file_type),
            LabelRule("log_level", "Level"),
            LabelRule("component", "Component"),
        )),
        SystemSpec("HDFS", "hdfs", (LabelRule("log_level", "Level"),
                                    LabelRule("component", "Component"))),
        # more systems, for synthetic training pairs that are not about the three above
        SystemSpec("Zookeeper", "zookeeper", (LabelRule("log_level", "Level"),
                                              LabelRule("component", "Component"))),
        SystemSpec("Hadoop", "hadoop", (LabelRule("log_level", "Level"),
                                        LabelRule("component", "Component"))),
        SystemSpec("Spark", "spark", (LabelRule("log_level", "Level"),
                                      LabelRule("component", "Component"))),
        SystemSpec("Apache", "apache", (LabelRule("log_level", "Level"),)),
        SystemSpec("Linux", "linux", (LabelRule("component", "Component"),)),
    )
}  # fmt: skip
FAMILY_SYSTEMS: Mapping[str, str] = {s.family: s.system for s in SYSTEMS.values()}


@dataclass
class TemplateInfo:
    """A Loghub template, how many sample lines it has, and a few of their values."""

    event_id: str
    template: str
    count: int = 0
    samples: list[list[str]] = field(default_factory=list)
    label_values: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class SystemLogs:
    """One system's lines with their labels (without ``application``) and times."""

    spec: SystemSpec
    lines: list[str]
    labels: list[dict[str, str]]
    ts_ns: np.ndarray  # int64, one per line
    templates: list[TemplateInfo]
    template_of_line: list[str]  # event id per line

    def label_values(self) -> dict[str, list[str]]:
        values: dict[str, set[str]] = {}
        for labels in self.labels:
            for name, value in labels.items():
                values.setdefault(name, set()).add(value)
        return {name: sorted(v) for name, v in sorted(values.items())}


_MAX_SAMPLES = 20


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read {path.name}: {exc}", path=str(path)) from None


def load_system(data_dir: str | Path, system: str) -> SystemLogs:
    """A system of ``<data_dir>/loghub-2k/<system>/``: raw lines, labels, times, templates."""
    spec = SYSTEMS.get(system)
    if spec is None:
        raise InputError(f"no label rules for Loghub system {system!r}; known: "
                         f"{', '.join(SYSTEMS)}")  # fmt: skip
    base = Path(data_dir) / "loghub-2k" / system
    log_path = base / f"{system}_2k.log"
    try:
        lines = log_path.read_text("utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the Loghub sample: {exc}", path=str(log_path)) from None
    rows = _read_csv(base / f"{system}_2k.log_structured_corrected.csv")
    if len(rows) != len(lines):
        raise InputError(f"{len(rows)} structured rows for {len(lines)} lines",
                         path=str(base))  # fmt: skip
    framed = preset(system).frame(pa.array(lines, pa.string()))
    ts = timestamps_from_fields(framed.fields, system)
    ts_ns = np.asarray(fill_forward(ts, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    templates = {r["EventId"]: TemplateInfo(r["EventId"], r["EventTemplate"])
                 for r in _read_csv(base / f"{system}_2k.log_templates_corrected.csv")}  # fmt: skip
    labels: list[dict[str, str]] = []
    template_of_line: list[str] = []
    for row in rows:
        line_labels = {r.name: r.value(row.get(r.column) or "") for r in spec.labels}
        line_labels = {k: v for k, v in line_labels.items() if v}
        labels.append(line_labels)
        info = templates.setdefault(row["EventId"], TemplateInfo(row["EventId"],
                                                                 row["EventTemplate"]))  # fmt: skip
        template_of_line.append(info.event_id)
        info.count += 1
        for name, value in line_labels.items():
            info.label_values.setdefault(name, set()).add(value)
        if len(info.samples) < _MAX_SAMPLES:
            info.samples.append(extract_params(info.template, row["Content"]))
    ordered = sorted(templates.values(), key=lambda t: _event_number(t.event_id))
    return SystemLogs(spec, lines, labels, ts_ns, ordered, template_of_line)


def _event_number(event_id: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", event_id)
    return (int(digits) if digits else 0, event_id)
