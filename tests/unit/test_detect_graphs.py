"""Per-window graphs: nodes, edges with counts, snapshots, bounds, determinism."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from logpipe.detect.graphs import (
    CO_ENTITY,
    CO_TEMPLATE,
    FOLLOWS,
    NODE_START,
    NODE_TEMPLATE,
    START_NAME,
    GraphBuilder,
    GraphConfig,
    entity_node_type,
    node_key,
)
from logpipe.detect.windows import Event, Window

LOGIN = "Accepted password for <*> from <*> port <*> ssh2"
REQUEST = "GET <*> from <*> user=<*> in <*> ms"


def _window(events: list[tuple[str, tuple[str, ...]]], key: str = "w") -> Window:
    evs = tuple(Event(i, f"E{i}", t, p, i + 1) for i, (t, p) in enumerate(events))
    return Window(key, 0, len(evs), evs)


class _FixedEmbedder:
    """Deterministic stand-in for MiniLM: a vector per template from its length."""

    dim = 4

    def embed(self, templates: Sequence[str]) -> np.ndarray:
        return np.array([[len(t), 1.0, 0.0, 0.0] for t in templates], dtype=np.float32)


def _edges(data: object) -> dict[tuple[str, str, int], float]:
    names = data.node_names  # type: ignore[attr-defined]
    ei = data.edge_index.numpy()  # type: ignore[attr-defined]
    kinds = data.edge_kind.numpy()  # type: ignore[attr-defined]
    counts = data.edge_count.numpy()  # type: ignore[attr-defined]
    return {
        (names[ei[0, e]], names[ei[1, e]], int(kinds[e])): float(counts[e])
        for e in range(ei.shape[1])
    }


def test_nodes_edges_and_counts() -> None:
    window = _window(
        [
            (LOGIN, ("alice", "10.0.0.5", "4242")),
            (REQUEST, ("/api/a", "10.0.0.5", "alice", "30")),
            (REQUEST, ("/api/b", "10.0.0.5", "alice", "31")),
        ]
    )
    data = GraphBuilder(GraphConfig(snapshots=2), embedder=_FixedEmbedder()).build(window)
    names = data.node_names
    assert names[0] == START_NAME and data.node_type[0] == NODE_START
    assert names.count("user:alice") == 1  # one node per value, whatever slot typed it
    assert names.count("ip:10.0.0.5") == 1
    edges = _edges(data)
    assert edges[(START_NAME, f"template:{LOGIN}", FOLLOWS)] == 1
    assert edges[(f"template:{LOGIN}", f"template:{REQUEST}", FOLLOWS)] == 1
    assert edges[(f"template:{REQUEST}", f"template:{REQUEST}", FOLLOWS)] == 1
    assert edges[(f"template:{REQUEST}", "ip:10.0.0.5", CO_TEMPLATE)] == 2
    assert edges[("ip:10.0.0.5", "user:alice", CO_ENTITY)] == 3
    # measures (the duration) hang off their template only
    assert (f"template:{REQUEST}", "duration:~2^5", CO_TEMPLATE) in edges
    assert not any("duration" in a or "duration" in b for a, b, k in edges if k == CO_ENTITY)
    # text vectors on template rows only, stable identities
    templates = data.node_type == NODE_TEMPLATE
    assert torch.all(data.x[templates, 1] == 1.0) and torch.all(data.x[~templates] == 0.0)
    ip_row = names.index("ip:10.0.0.5")
    assert int(data.node_key[ip_row]) == node_key("name", "10.0.0.5")
    assert int(data.node_type[ip_row]) == entity_node_type("ip")
    # snapshots: 3 events in 2 slices; the login is only in the first
    login_row = names.index(f"template:{LOGIN}")
    assert data.node_snaps[login_row].tolist() == [True, False]
    assert data.edge_snaps.shape == (data.edge_index.shape[1], 2)
    assert torch.equal(data.edge_snaps.sum(1), data.edge_count)
    assert data.num_events == 3


def test_build_is_deterministic() -> None:
    window = _window(
        [(REQUEST, (f"/p{i}", f"10.0.0.{i % 3}", f"u{i % 4}", "5")) for i in range(40)]
    )
    a = GraphBuilder(GraphConfig()).build(window)
    b = GraphBuilder(GraphConfig()).build(window)
    for field in (
        "x",
        "node_type",
        "node_key",
        "node_snaps",
        "edge_index",
        "edge_kind",
        "edge_snaps",
    ):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.node_names == b.node_names


def test_bounds_are_kept_and_counted() -> None:
    config = GraphConfig(max_events=50, max_nodes=20, max_edges=10, max_entities_per_line=2)
    window = _window(
        [(LOGIN, (f"user{i}", f"10.1.{i // 200}.{i % 200}", str(1000 + i))) for i in range(80)]
    )
    window = Window(window.key, 0, 1, window.events, dropped=5)
    builder = GraphBuilder(config)
    data = builder.build(window)
    assert data.num_nodes == 20 and data.edge_index.shape[1] == 10
    assert data.num_events == 50 and data.overflow_events == 30 + 5
    assert data.overflow_nodes > 0 and data.overflow_edges > 0
    stats = builder.stats
    assert stats.bounded_windows == 1 and stats.overflow_entities == 50  # 3 per line, 2 kept


def test_empty_window_is_a_start_node() -> None:
    builder = GraphBuilder()
    data = builder.build(Window("e", 0, 0, ()))
    assert data.num_nodes == 1 and data.edge_index.shape == (2, 0)
    assert builder.stats.empty_windows == 1


def test_build_many_embeds_all_templates_in_one_batch_first() -> None:
    batches: list[list[str]] = []

    class Recording(_FixedEmbedder):
        def embed(self, templates: Sequence[str]) -> np.ndarray:
            batches.append(list(templates))
            return super().embed(templates)

    windows = [
        _window([(LOGIN, ("a", "10.0.0.1", "1")), (REQUEST, ("/x", "10.0.0.1", "a", "3"))], "1"),
        _window([(REQUEST, ("/y", "10.0.0.2", "b", "4"))], "2"),
    ]
    graphs = GraphBuilder(embedder=Recording()).build_many(windows)
    assert len(graphs) == 2
    assert batches[0] == [LOGIN, REQUEST]  # one batch of every distinct template, in order
