"""What GLAD knows of normal data besides its weights: vocabularies and novelty statistics.

- **Entity vocabulary**: the typed values (by node key) seen in at least ``min_count``
  training windows; each gets a learned embedding row. Rarer values share their type's
  "unknown" row, so a type whose values never repeat (ports, block ids) is learned as
  "usually unknown", and a type whose values always repeat (users, hosts) is not.
- **Template vocabulary**: every template of the training windows with its text vector.
- **Novelty** of a node outside the vocabulary, in nats: how often do normal windows bring
  something new? Counted per window incidence, pooling two estimates: in the training
  windows, the incidences of values too rare to be in the vocabulary (Good–Turing's
  estimate of the chance of a new value), and in the held-out normal windows (when given),
  the incidences of values outside it, which also sees drift: a log whose later days bring
  new values all the time makes new values less surprising. For an entity of type ``t``:
  ``-log p_new(t)``, ``p_new(t)`` = (new incidences of type t + 1) / (incidences of type
  t + 2). For a template: ``-log p_new(template)`` plus ``-log q(d)``, where ``d`` is its
  cosine distance to the nearest known template and ``q(d)`` the share of "new normal
  templates" at least that far from the known ones (smoothed), those being each known
  template against the others (leave one out) and the held-out windows' new templates: a
  new template that reads like a known one is less surprising than one unlike anything
  seen. These are log-likelihood ratios of "something new appeared", so they add to the
  edge scorer's log-odds (see the model card).

Everything here is numbers and strings: saved as safetensors tensors plus JSON, never pickle.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from logpipe.detect.fields import ENTITY_TYPES, FieldExtractor, identity_kind
from logpipe.detect.graphs import NUM_NODE_TYPES, entity_node_type, node_key
from logpipe.detect.windows import Window

__all__ = ["Vocabulary", "build_vocabulary", "edge_identities", "unique_sorted"]


@dataclass
class Vocabulary:
    """Vocabularies and novelty statistics of the training windows (see module docstring).

    ``entity_keys`` is sorted; embedding row of the i-th is ``NUM_NODE_TYPES + i`` (rows
    below are each node type's "unknown" row). ``template_keys`` is sorted too, with
    ``template_names``/``template_vectors`` in the same order. ``p_new`` is per node type.
    ``pools`` (training only, not saved) maps each entity type to its known values and
    their window counts, which corruption samples from.
    """

    entity_keys: np.ndarray
    template_keys: np.ndarray
    template_names: list[str]
    template_vectors: np.ndarray
    p_new: np.ndarray
    template_p_new: float
    template_loo: np.ndarray
    pools: dict[str, tuple[list[str], np.ndarray]]

    @property
    def rows(self) -> int:
        """Rows of the value embedding table."""
        return NUM_NODE_TYPES + len(self.entity_keys)

    def entity_novelty(self) -> np.ndarray:
        """``-log p_new`` per node type (nats)."""
        out: np.ndarray = -np.log(self.p_new)
        return out

    def template_novelty(self, distance: np.ndarray) -> np.ndarray:
        """Novelty (nats) of new templates at cosine ``distance`` to the nearest known one."""
        loo = self.template_loo
        at_least = len(loo) - np.searchsorted(loo, distance, side="left")
        q = (at_least + 1.0) / (len(loo) + 1.0)
        out: np.ndarray = -math.log(self.template_p_new) - np.log(q)
        return out


def _loo_distances(vectors: np.ndarray) -> np.ndarray:
    """Sorted cosine distance of each unit vector to its nearest other vector."""
    m = len(vectors)
    if m < 2:
        return np.ones(m, dtype=np.float64)
    out = np.empty(m, dtype=np.float64)
    for start in range(0, m, 1024):  # bounded memory for large vocabularies
        sims = vectors[start : start + 1024] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        out[start : start + len(rows)] = 1.0 - sims.max(axis=1)
    return np.sort(np.clip(out, 0.0, 2.0))


def _window_counts(
    windows: Sequence[Window], extractor: FieldExtractor, max_events: int
) -> tuple[Counter[tuple[str, str]], Counter[str]]:
    """Windows per (type, value) and per template."""
    typed_windows: Counter[tuple[str, str]] = Counter()
    template_windows: Counter[str] = Counter()
    for window in windows:
        seen_values: set[tuple[str, str]] = set()
        seen_templates: set[str] = set()
        for event in window.events[:max_events]:
            seen_templates.add(event.template)
            for ent in extractor.entities(event.template, event.params):
                seen_values.add((ent.type, ent.value))
        typed_windows.update(seen_values)
        template_windows.update(seen_templates)
    return typed_windows, template_windows


def build_vocabulary(
    windows: Sequence[Window],
    extractor: FieldExtractor,
    embed: Callable[[Sequence[str]], np.ndarray],
    *,
    min_count: int,
    max_entity_vocab: int,
    max_events: int,
    held_out: Sequence[Window] = (),
) -> Vocabulary:
    """Count templates and typed values per training window; see the module docstring.

    ``embed`` maps template texts to unit vectors (``TemplateEmbedder.embed``);
    ``held_out`` are normal windows not trained on, for the novelty rates.
    """
    typed_windows, template_windows = _window_counts(windows, extractor, max_events)
    identity_windows: Counter[tuple[str, str]] = Counter()  # (identity kind, value): windows
    for (kind, value), count in typed_windows.items():
        identity_windows[(identity_kind(kind), value)] += count

    ranked = [kv for kv, count in identity_windows.most_common() if count >= min_count]
    kept = set(ranked[:max_entity_vocab])
    incidences = np.zeros(NUM_NODE_TYPES, dtype=np.float64)
    rare = np.zeros(NUM_NODE_TYPES, dtype=np.float64)
    by_type: dict[str, list[tuple[str, int]]] = {}
    for (kind, value), count in typed_windows.items():
        t = entity_node_type(kind)
        incidences[t] += count
        if (identity_kind(kind), value) in kept:
            by_type.setdefault(kind, []).append((value, count))
        else:
            rare[t] += count
    held_values, held_templates = _window_counts(held_out, extractor, max_events)
    for (kind, value), count in held_values.items():
        t = entity_node_type(kind)
        incidences[t] += count
        if (identity_kind(kind), value) not in kept:
            rare[t] += count
    p_new = (rare + 1.0) / (incidences + 2.0)
    p_new[:2] = 1.0  # templates and <start> have their own statistics

    pools: dict[str, tuple[list[str], np.ndarray]] = {}
    for kind in ENTITY_TYPES:
        values = sorted(by_type.get(kind, []))
        if len(values) >= 2:
            pools[kind] = ([v for v, _ in values], np.array([c for _, c in values], np.float64))
    entity_keys = np.array(sorted(node_key(k, v) for k, v in kept), dtype=np.int64)

    by_key = sorted((node_key("template", t), t) for t in template_windows)
    names = [t for _, t in by_key]
    vectors = np.asarray(embed(names), dtype=np.float32)
    new_templates = sorted(t for t in held_templates if t not in template_windows)
    total = float(sum(template_windows.values()) + sum(held_templates.values()))
    once = float(sum(1 for c in template_windows.values() if c == 1))
    once += float(sum(held_templates[t] for t in new_templates))
    distances = _loo_distances(vectors.astype(np.float64))
    if new_templates and len(vectors):
        sims = np.asarray(embed(new_templates), dtype=np.float64) @ vectors.T.astype(np.float64)
        distances = np.sort(np.concatenate([distances, np.clip(1.0 - sims.max(axis=1), 0, 2)]))
    return Vocabulary(
        entity_keys=entity_keys,
        template_keys=np.array([k for k, _ in by_key], dtype=np.int64),
        template_names=names,
        template_vectors=vectors,
        p_new=p_new,
        template_p_new=(once + 1.0) / (total + 2.0),
        template_loo=distances,
        pools=pools,
    )


def edge_identities(
    node_ident: np.ndarray, edge_index: np.ndarray, edge_kind: np.ndarray
) -> np.ndarray:
    """One int64 per edge from its endpoints' identities and kind (for set membership)."""
    u = node_ident[edge_index[0]].astype(np.uint64)
    v = node_ident[edge_index[1]].astype(np.uint64)
    k = edge_kind.astype(np.uint64)
    with np.errstate(over="ignore"):
        h = u * np.uint64(0x9E3779B97F4A7C15) ^ (v + np.uint64(0x632BE59BD9B4E019))
        h = (h ^ (h >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9) + k
    out: np.ndarray = h.astype(np.int64)
    return out


def unique_sorted(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Sorted distinct values of many int64 arrays."""
    parts = [c for c in chunks if len(c)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
