"""GLAD's configuration: one dataclass, every field defaulted, one setting for every log.

Saved beside the weights as JSON (``config.json``), so a loaded model scores exactly as the
trained one did. No field is tuned per data set: the numbers below are the defaults every
benchmark uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from logpipe.detect.graphs import GraphConfig
from logpipe.errors import UsageError

__all__ = ["GladConfig"]


@dataclass(frozen=True)
class GladConfig:
    """Graphs, network, training and thresholding of a :class:`GladDetector`.

    Graphs (see :mod:`logpipe.detect.graphs`): ``snapshots`` slices per window read in
    order by the temporal encoder, and the per-window bounds.

    Vocabulary: an entity value seen in at least ``min_count`` training windows gets its own
    learned embedding (at most ``max_entity_vocab`` values, most frequent first); rarer
    values share their type's "unknown" embedding.

    Network: ``hidden`` units, ``gnn_layers`` GAT layers of ``heads`` heads per snapshot, a
    GRU over the snapshots, an MLP edge scorer.

    Training (normal windows only): ``epochs`` passes of ``batch_windows`` windows (at most
    ``max_steps`` steps), each window with about ``corrupt_rate`` of its events (at least
    one, at most ``max_corruptions``) corrupted to make anomalous edges; loss = BCE +
    ``margin_weight`` x margin ranking (anomalous edge above the window's highest normal edge
    by ``margin``). A training window is first cut to a random slice with probability
    ``crop_probability`` (partial windows are normal too).

    Threshold: the ``threshold_quantile`` quantile of held-out normal windows' scores (1.0:
    the highest, the project's one threshold rule, ``logpipe.detect.metrics``); when ``fit``
    gets no validation windows it holds out the last ``calibration_fraction`` of the
    training windows (not trained on).

    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; mixed precision
    (bfloat16 autocast) on CUDA only. ``threads``: torch intra-op threads while fitting and
    scoring (restored afterwards); ``None`` leaves torch's setting alone. The graphs are
    small, so one thread loses little, and on a busy machine it avoids threads spinning
    against each other.
    """

    snapshots: int = 4
    max_events: int = 20_000
    max_nodes: int = 512
    max_edges: int = 4096
    max_entities_per_line: int = 12

    min_count: int = 3
    max_entity_vocab: int = 100_000

    hidden: int = 64
    heads: int = 2
    gnn_layers: int = 2
    dropout: float = 0.1

    epochs: int = 80
    batch_windows: int = 32
    max_steps: int = 3000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    corrupt_rate: float = 0.05
    max_corruptions: int = 4
    crop_probability: float = 0.5
    margin: float = 2.0
    margin_weight: float = 1.0
    seed: int = 0

    threshold_quantile: float = 1.0
    calibration_fraction: float = 0.2
    score_batch_windows: int = 128
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "snapshots": self.snapshots >= 1,
            "max_events": self.max_events >= 1,
            "max_nodes": self.max_nodes >= 2,
            "max_edges": self.max_edges >= 1,
            "min_count": self.min_count >= 1,
            "hidden": self.hidden >= 2 and self.hidden % self.heads == 0,
            "heads": self.heads >= 1,
            "gnn_layers": self.gnn_layers >= 1,
            "epochs": self.epochs >= 0,
            "batch_windows": self.batch_windows >= 1,
            "threshold_quantile": 0.0 < self.threshold_quantile <= 1.0,
            "calibration_fraction": 0.0 <= self.calibration_fraction < 1.0,
            "device": self.device in {"auto", "cpu", "cuda"},
            "threads": self.threads is None or self.threads >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise UsageError(f"invalid GLAD configuration: {values}")

    @property
    def graph(self) -> GraphConfig:
        """The graph bounds as :class:`~logpipe.detect.graphs.GraphConfig`."""
        return GraphConfig(
            snapshots=self.snapshots,
            max_events=self.max_events,
            max_nodes=self.max_nodes,
            max_edges=self.max_edges,
            max_entities_per_line=self.max_entities_per_line,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GladConfig:
        """The config saved by :meth:`to_json`; unknown keys are an error (named)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown GLAD config keys: {', '.join(unknown)}")
        return cls(**data)
