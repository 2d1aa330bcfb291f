"""What a store can tell the prompt about its logs: templates mined from a bounded sample.

The store indexes label sets, not templates (its segments hold a template dictionary each,
but per segment and without counts). A model asked "how many failed logins" must quote a
phrase the lines really contain, so ``logpipe ask`` mines templates itself, from a bounded
sample: the newest ``lines_per_stream`` lines of at most ``max_streams`` streams (the busiest,
by lines in the manifest), each stream's lines framed with the detected log format (so the
miner sees the message, not the timestamp), all mined by one
:class:`~logpipe.parsing.miner.TemplateMiner`. At most ``max_templates`` templates are kept,
the most frequent first, each with a few parameter samples and the label values of the
streams it was seen in (what synthetic examples are built from).

Why a cache: sampling reads segments and mining costs a few hundred milliseconds, while a
store changes only when it ingests. The result is kept per (store, tenant, limits), valid
while the tenant's manifest is the same (its ``next_seq`` and segment count change with
every write and every retention run): in memory for a server, and as a JSON file under the
cache directory for the CLI, which runs once per question. A cache file that cannot be
read is ignored and rewritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from logpipe.formats import detect_framer
from logpipe.labels import LabelMatcher, MatchOp, format_labels
from logpipe.nl.loghub import TemplateInfo
from logpipe.parsing.miner import TemplateMiner
from logpipe.parsing.params import extract_params
from logpipe.store import Store

__all__ = [
    "MinedTemplate",
    "SampleLimits",
    "StoreTemplates",
    "TemplateCache",
    "app_label_of",
    "mine_store_templates",
    "store_fingerprint",
    "templates_by_app",
]

CACHE_VERSION = 1
_SAMPLES = 20
_APP_LABELS = ("application", "app", "service", "service_name", "job", "container", "component")


@dataclass(frozen=True)
class SampleLimits:
    """How much of a store is read to mine templates (bounded whatever its size)."""

    lines_per_stream: int = 200
    max_streams: int = 64
    max_templates: int = 300


@dataclass(frozen=True)
class MinedTemplate:
    """A template, how many sampled lines it had, parameter samples, and the label values
    of the streams it was seen in."""

    template: str
    count: int
    samples: tuple[tuple[str, ...], ...] = ()
    labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def info(self, event_id: str = "") -> TemplateInfo:
        """As the synthetic-pair builder takes it."""
        return TemplateInfo(event_id, self.template, self.count, [list(s) for s in self.samples],
                            {n: set(v) for n, v in self.labels.items()})  # fmt: skip


@dataclass(frozen=True)
class StoreTemplates:
    """The mined templates of one tenant, and what they were mined from."""

    templates: tuple[MinedTemplate, ...]
    fingerprint: str
    lines: int
    streams: int

    def texts(self) -> list[str]:
        return [t.template for t in self.templates]


def store_fingerprint(store: Store, tenant: str) -> str:
    """Changes whenever the tenant's data does (a write or a retention run)."""
    manifest = store.manifest(tenant)
    last = max((s.max_ts for s in manifest.segments), default=0)
    return f"{manifest.next_seq}:{len(manifest.segments)}:{last}"


def _busiest(store: Store, tenant: str, limit: int) -> list[dict[str, str]]:
    lines: Counter[str] = Counter()
    labels: dict[str, dict[str, str]] = {}
    for entry in store.manifest(tenant).segments:
        lines[entry.stream] += entry.lines
        labels.setdefault(entry.stream, dict(entry.labels))
    ranked = sorted(lines, key=lambda s: (-lines[s], s))[:limit]
    return [labels[s] for s in sorted(ranked)]


def _newest_lines(store: Store, tenant: str, labels: Mapping[str, str], limit: int) -> list[str]:
    """The stream's newest lines (up to ``limit``; fewer when streams with more labels
    match the same selector and take part of the limit)."""
    matchers = [LabelMatcher(n, MatchOp.EQ, v) for n, v in sorted(labels.items())]
    text = format_labels(dict(labels))
    out: list[str] = []
    for batch in store.read(tenant, matchers, direction="backward", limit=limit):
        streams = batch.column("stream").to_pylist()
        for stream, line in zip(streams, batch.column("line").to_pylist(), strict=True):
            if stream == text:
                out.append(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
    return out


def mine_store_templates(
    store: Store, tenant: str, limits: SampleLimits = SampleLimits()
) -> StoreTemplates:
    """Mine templates from a bounded sample of the tenant's newest lines (module doc)."""
    fingerprint = store_fingerprint(store, tenant)
    miner = TemplateMiner()
    seen: list[tuple[int, str, dict[str, str]]] = []
    streams = _busiest(store, tenant, limits.max_streams)
    for labels in streams:
        lines = _newest_lines(store, tenant, labels, limits.lines_per_stream)
        if not lines:
            continue
        framed = detect_framer(lines[:50]).frame(pa.array(lines, pa.string()))
        for content in framed.content.to_pylist():
            text = content or ""
            seen.append((miner.add(text), text, labels))
    counts: Counter[int] = Counter(cid for cid, _, _ in seen)
    samples: dict[int, list[tuple[str, ...]]] = {}
    values: dict[int, dict[str, set[str]]] = {}
    for cid, text, labels in seen:
        template = miner.template_of(cid)
        kept = samples.setdefault(cid, [])
        if len(kept) < _SAMPLES:
            kept.append(tuple(extract_params(template, text)))
        for name, value in labels.items():
            values.setdefault(cid, {}).setdefault(name, set()).add(value)
    ranked = sorted(counts, key=lambda c: (-counts[c], c))[: limits.max_templates]
    mined = tuple(
        MinedTemplate(
            miner.template_of(c),
            counts[c],
            tuple(samples[c]),
            {n: tuple(sorted(v)) for n, v in sorted(values[c].items())},
        )
        for c in ranked
    )
    return StoreTemplates(mined, fingerprint, len(seen), len(streams))


def app_label_of(labels: Mapping[str, Sequence[str]]) -> str | None:
    """The label that names an application in a store: the first of ``application``,
    ``app``, ``service``, ... it has; else the label with the fewest values (more than
    none); None for a store without labels."""
    for name in _APP_LABELS:
        if labels.get(name):
            return name
    named = [(len(v), n) for n, v in labels.items() if v and not n.startswith("__")]
    return min(named)[1] if named else None


def templates_by_app(
    mined: StoreTemplates, app_label: str, apps_per_template: int = 2
) -> dict[str, list[TemplateInfo]]:
    """Per value of ``app_label``: the templates seen in its streams, other labels' values
    attached (the input of :func:`logpipe.nl.synth.generate_for_store`). A template shared by
    many applications (one program deployed many times) goes to the first
    ``apps_per_template`` of them only, which bounds the examples built from it."""
    out: dict[str, list[TemplateInfo]] = {}
    for i, t in enumerate(mined.templates):
        for app in t.labels.get(app_label, ())[:apps_per_template]:
            info = t.info(f"T{i + 1}")
            info.label_values = {n: v for n, v in info.label_values.items() if n != app_label}
            out.setdefault(app, []).append(info)
    return out


# ------------------------------------------------------------------ cache
def _to_json(found: StoreTemplates) -> dict[str, Any]:
    return {"version": CACHE_VERSION, **asdict(found)}


def _from_json(data: Any) -> StoreTemplates | None:
    """The cached value, or None when the file is not one we wrote (never trusted)."""
    try:
        if data.get("version") != CACHE_VERSION:
            return None
        templates = tuple(
            MinedTemplate(str(t["template"]), int(t["count"]),
                          tuple(tuple(str(x) for x in s) for s in t["samples"]),
                          {str(n): tuple(str(x) for x in v) for n, v in t["labels"].items()})
            for t in data["templates"]
        )  # fmt: skip
        return StoreTemplates(templates, str(data["fingerprint"]), int(data["lines"]),
                              int(data["streams"]))  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


class TemplateCache:
    """Mined templates per (store, tenant, limits), reused while the store is unchanged;
    in memory, and in ``directory`` (JSON) when one is given."""

    def __init__(self, directory: Path | None = None, limits: SampleLimits = SampleLimits()):
        self.directory = directory
        self.limits = limits
        self._memory: dict[str, StoreTemplates] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _key(self, store: Store, tenant: str) -> str:
        where = json.dumps([store.files.root, tenant, asdict(self.limits)])
        return hashlib.sha256(where.encode()).hexdigest()[:32]

    def _read(self, key: str) -> StoreTemplates | None:
        if self.directory is None:
            return None
        try:
            data = json.loads((self.directory / f"templates-{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return _from_json(data)

    def _write(self, key: str, found: StoreTemplates) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".templates-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(_to_json(found), fh)
            os.replace(tmp, self.directory / f"templates-{key}.json")
        except OSError:
            return  # a cache that cannot be written costs time on the next call, nothing else

    def get(self, store: Store, tenant: str) -> StoreTemplates:
        """The tenant's templates: cached while the store is unchanged, else mined."""
        key = self._key(store, tenant)
        fingerprint = store_fingerprint(store, tenant)
        with self._lock:
            found = self._memory.get(key) or self._read(key)
            if found is not None and found.fingerprint == fingerprint:
                self._memory[key] = found
                self.hits += 1
                return found
            self.misses += 1
        found = mine_store_templates(store, tenant, self.limits)
        with self._lock:
            self._memory[key] = found
            self._write(key, found)
        return found
