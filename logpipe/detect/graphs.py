"""One window of events as a small dynamic graph of templates and typed entities.

Why a graph: sequence and count models see which templates occur and in what order; they
cannot see that a user logged in from an address never seen with that user, or that a
component touched a resource it never touches. Those are *relations*, and a graph whose
nodes are the templates and the entity values of a window makes them edges that a model can
score one by one (and name in an alert).

The graph of a window (:func:`GraphBuilder.build`):

- **nodes**: one per distinct template, one per distinct typed entity value
  (:class:`~logpipe.detect.fields.Entity`: ``ip:10.0.0.5``, ``user:alice``; one node per
  value whatever slot type it had, see :func:`~logpipe.detect.fields.identity_kind`; its
  type and name come from its first occurrence in the window), and a
  ``<start>`` node that the first event follows. ``node_type`` is 0 for templates, 1 for
  ``<start>``, ``2 + i`` for the i-th of :data:`~logpipe.detect.fields.ENTITY_TYPES`.
- **edges**: template–entity when the entity is a value of a line of that template,
  entity–entity when two entities share a line (ordered by type, then value; measures such
  as sizes and durations take no part: :data:`~logpipe.detect.fields.MEASURE_TYPES`), and
  template→template when one event follows another (``<start>`` → the first event).
  ``edge_kind`` is :data:`CO_TEMPLATE`, :data:`CO_ENTITY` or :data:`FOLLOWS`, ``edge_count``
  how often the edge occurred.
- **snapshots**: the window's events are cut into ``snapshots`` consecutive, equally long
  slices, and ``edge_snaps[e, s]`` / ``node_snaps[v, s]`` say which edges and nodes occur in
  slice ``s``; a temporal encoder reads them in order. Slices by event position, not time,
  so a session of a few events and a busy time window both give the same number of slices.
- **features**: ``x`` holds each template's text embedding (:mod:`logpipe.detect.embed`;
  zero rows for other nodes), ``node_key`` a stable 64-bit hash of the node's identity
  (type and value; the same in every process, unlike ``hash()``) by which a model looks up
  learned value embeddings, ``node_names`` the names an explanation prints.

Bounded: at most ``max_events`` events of a window are read, at most ``max_nodes`` nodes and
``max_edges`` edges are kept, at most ``max_entities_per_line`` entities of a line count;
everything beyond is counted in the graph (``overflow_*``) and in :class:`GraphStats`, never
silently lost and never a crash. An empty window gives a graph with the ``<start>`` node only.
Deterministic: the same window gives the same graph, node and edge order included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch_geometric.data import Data

from logpipe.detect.fields import (
    ENTITY_TYPES,
    MEASURE_TYPES,
    Entity,
    FieldExtractor,
    identity_kind,
)
from logpipe.detect.windows import Window

__all__ = [
    "CO_ENTITY",
    "CO_TEMPLATE",
    "EDGE_KIND_NAMES",
    "FOLLOWS",
    "NODE_START",
    "NODE_TEMPLATE",
    "START_NAME",
    "GraphBuilder",
    "GraphConfig",
    "GraphStats",
    "TextEmbedder",
    "entity_node_type",
    "node_key",
]

NODE_TEMPLATE = 0
NODE_START = 1
CO_TEMPLATE = 0
CO_ENTITY = 1
FOLLOWS = 2
EDGE_KIND_NAMES: tuple[str, ...] = ("co-occurs", "co-occurs", "follows")
"""``EdgeExplanation.kind`` of each edge kind."""
START_NAME = "template:<start>"
NUM_NODE_TYPES = 2 + len(ENTITY_TYPES)
_ENTITY_TYPE_INDEX = {name: 2 + i for i, name in enumerate(ENTITY_TYPES)}


def entity_node_type(entity_type: str) -> int:
    """The ``node_type`` of an entity type (``2 + its index`` in ENTITY_TYPES)."""
    return _ENTITY_TYPE_INDEX[entity_type]


def node_key(kind: str, value: str) -> int:
    """A stable signed 64-bit identity of a node (``kind`` is ``template`` or an entity type)."""
    digest = hashlib.blake2b(f"{kind}\x1f{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class TextEmbedder(Protocol):
    """What the builder needs from :class:`~logpipe.detect.embed.TemplateEmbedder`."""

    @property
    def dim(self) -> int: ...

    def embed(self, templates: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class GraphConfig:
    """Bounds and shape of the per-window graphs (one setting for every log system)."""

    snapshots: int = 4
    max_events: int = 20_000
    max_nodes: int = 512
    max_edges: int = 4096
    max_entities_per_line: int = 12


@dataclass
class GraphStats:
    """Totals over every graph built; each ``overflow_*`` counts items left out by a bound."""

    windows: int = 0
    empty_windows: int = 0
    events: int = 0
    overflow_events: int = 0
    overflow_nodes: int = 0
    overflow_edges: int = 0
    overflow_entities: int = 0
    bounded_windows: int = 0


class _Nodes:
    """Node table of one graph under construction."""

    __slots__ = ("keys", "names", "overflow", "snaps", "templates", "types", "where")

    def __init__(self) -> None:
        self.where: dict[tuple[str, str], int] = {}
        self.types: list[int] = []
        self.keys: list[int] = []
        self.names: list[str] = []
        self.templates: list[str | None] = []
        self.snaps: list[set[int]] = []
        self.overflow = 0


class GraphBuilder:
    """Builds :class:`torch_geometric.data.Data` graphs of windows (see the module docstring).

    ``embedder`` gives template text vectors; without one, ``x`` has ``text_dim`` zero
    columns (structure-only graphs, for tests and tools that need no text).
    """

    def __init__(
        self,
        config: GraphConfig | None = None,
        *,
        extractor: FieldExtractor | None = None,
        embedder: TextEmbedder | None = None,
        text_dim: int = 384,
    ) -> None:
        self.config = config or GraphConfig()
        if self.config.snapshots < 1:
            raise ValueError(f"snapshots must be at least 1, got {self.config.snapshots}")
        self.extractor = extractor or FieldExtractor()
        self.embedder = embedder
        self.text_dim = embedder.dim if embedder is not None else text_dim
        self.stats = GraphStats()
        self._keys: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ public
    def build_many(self, windows: Sequence[Window]) -> list[Data]:
        """Graphs of many windows; their template texts are embedded in one batch."""
        self.prefetch(windows)
        return [self.build(w) for w in windows]

    def prefetch(self, windows: Sequence[Window]) -> None:
        """Embed the templates of ``windows`` at once (later builds hit the cache)."""
        if self.embedder is None:
            return
        limit = self.config.max_events
        texts = dict.fromkeys(e.template for w in windows for e in w.events[:limit])
        if texts:
            self.embedder.embed(list(texts))

    def build(self, window: Window) -> Data:
        """The graph of one window."""
        cfg = self.config
        stats = self.stats
        stats.windows += 1
        events = window.events[: cfg.max_events]
        overflow_events = len(window.events) - len(events) + max(window.dropped, 0)
        if not events:
            stats.empty_windows += 1
        nodes = _Nodes()
        edges: dict[tuple[int, int, int], list[int]] = {}
        overflow_edges = 0
        overflow_entities = 0
        snapshots = cfg.snapshots
        n = len(events)
        start = self._node(
            nodes, "<start>", "<start>", NODE_START, template=None, snap=0, name=START_NAME
        )
        previous = start
        entities_of = self.extractor.entities
        for i, event in enumerate(events):
            snap = i * snapshots // n
            t = self._node(
                nodes,
                "template",
                event.template,
                NODE_TEMPLATE,
                template=event.template,
                snap=snap,
                name=f"template:{event.template}",
            )
            overflow_edges += self._edge(edges, previous, t, FOLLOWS, snap)
            previous = t if t >= 0 else previous
            ents = list(dict.fromkeys(entities_of(event.template, event.params)))
            if len(ents) > cfg.max_entities_per_line:
                overflow_entities += len(ents) - cfg.max_entities_per_line
                ents = ents[: cfg.max_entities_per_line]
            ids = [self._entity_node(nodes, ent, snap) for ent in ents]
            order = sorted(
                (j for j in range(len(ids)) if ids[j] >= 0),
                key=lambda j: (nodes.types[ids[j]], ents[j].value),
            )
            for a, ja in enumerate(order):
                overflow_edges += self._edge(edges, t, ids[ja], CO_TEMPLATE, snap)
                if ents[ja].type in MEASURE_TYPES:
                    continue
                for jb in order[a + 1 :]:
                    if ents[jb].type not in MEASURE_TYPES:
                        overflow_edges += self._edge(edges, ids[ja], ids[jb], CO_ENTITY, snap)
        overflow_nodes = nodes.overflow
        if overflow_events or overflow_nodes or overflow_edges or overflow_entities:
            stats.bounded_windows += 1
        stats.events += n
        stats.overflow_events += overflow_events
        stats.overflow_nodes += overflow_nodes
        stats.overflow_edges += overflow_edges
        stats.overflow_entities += overflow_entities
        return self._data(
            nodes,
            edges,
            n_events=n,
            overflow_events=overflow_events,
            overflow_nodes=overflow_nodes,
            overflow_edges=overflow_edges,
        )

    # ------------------------------------------------------------------ internals
    def _key(self, kind: str, value: str) -> int:
        cache = self._keys
        found = cache.get((kind, value))
        if found is None:
            if len(cache) >= 1_000_000:  # bounded: ids of sessions never repeat
                cache.clear()
            found = cache[(kind, value)] = node_key(kind, value)
        return found

    def _node(
        self,
        nodes: _Nodes,
        kind: str,
        value: str,
        node_type: int,
        *,
        template: str | None,
        snap: int,
        name: str,
    ) -> int:
        """Index of the node, created when new; -1 when the node bound is reached."""
        idx = nodes.where.get((kind, value))
        if idx is None:
            if len(nodes.types) >= self.config.max_nodes:
                nodes.overflow += 1
                return -1
            idx = nodes.where[(kind, value)] = len(nodes.types)
            nodes.types.append(node_type)
            nodes.keys.append(self._key(kind, value))
            nodes.names.append(name)
            nodes.templates.append(template)
            nodes.snaps.append({snap})
        else:
            nodes.snaps[idx].add(snap)
        return idx

    def _entity_node(self, nodes: _Nodes, entity: Entity, snap: int) -> int:
        kind = identity_kind(entity.type)
        node_type = _ENTITY_TYPE_INDEX[entity.type]
        return self._node(
            nodes, kind, entity.value, node_type, template=None, snap=snap, name=entity.name
        )

    def _edge(
        self, edges: dict[tuple[int, int, int], list[int]], u: int, v: int, kind: int, snap: int
    ) -> int:
        """Count one occurrence of an edge; 1 when it had to be left out, else 0."""
        if u < 0 or v < 0:
            return 1
        counts = edges.get((u, v, kind))
        if counts is None:
            if len(edges) >= self.config.max_edges:
                return 1
            counts = edges[(u, v, kind)] = [0] * self.config.snapshots
        counts[snap] += 1
        return 0

    def _data(
        self,
        nodes: _Nodes,
        edges: dict[tuple[int, int, int], list[int]],
        *,
        n_events: int,
        overflow_events: int,
        overflow_nodes: int,
        overflow_edges: int,
    ) -> Data:
        s = self.config.snapshots
        n = len(nodes.types)
        x = np.zeros((n, self.text_dim), dtype=np.float32)
        rows = [i for i, t in enumerate(nodes.templates) if t is not None]
        if rows and self.embedder is not None:
            x[rows] = self.embedder.embed([nodes.templates[i] or "" for i in rows])
        node_snaps = np.zeros((n, s), dtype=np.bool_)
        for i, snaps in enumerate(nodes.snaps):
            node_snaps[i, list(snaps)] = True
        if edges:
            keys = np.array(list(edges), dtype=np.int64).reshape(-1, 3)
            counts = np.array(list(edges.values()), dtype=np.float32).reshape(-1, s)
        else:
            keys = np.zeros((0, 3), dtype=np.int64)
            counts = np.zeros((0, s), dtype=np.float32)
        return Data(
            x=torch.from_numpy(x),
            node_type=torch.tensor(nodes.types, dtype=torch.long),
            node_key=torch.tensor(nodes.keys, dtype=torch.long),
            node_snaps=torch.from_numpy(node_snaps),
            edge_index=torch.from_numpy(np.ascontiguousarray(keys[:, :2].T)),
            edge_kind=torch.from_numpy(np.ascontiguousarray(keys[:, 2])),
            edge_snaps=torch.from_numpy(counts),
            edge_count=torch.from_numpy(counts.sum(axis=1)),
            node_names=list(nodes.names),
            num_nodes=n,
            num_events=n_events,
            overflow_events=overflow_events,
            overflow_nodes=overflow_nodes,
            overflow_edges=overflow_edges,
        )
