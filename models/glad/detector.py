"""GladDetector: fit on normal windows, score windows, name the edges that explain a score.

The pieces, each in its own module: typed entities (:mod:`logpipe.detect.fields`), template
vectors (:mod:`logpipe.detect.embed`), per-window graphs (:mod:`logpipe.detect.graphs`),
vocabularies and novelty (:mod:`.vocab`), anomaly injection (:mod:`.corrupt`) and the
network (:mod:`.network`). This module wires them: training loop, batched scoring,
threshold, explanations, checkpoints.

**Score of a window** = the highest score of its edges, where an edge's score is the
network's anomaly logit plus the novelty (nats) of its endpoints that lie outside the
training vocabulary (0 for known nodes). Log-odds and log-likelihood ratios add, so a known
but wrong relation (user with another user's address), a never-seen template and a
never-seen value of a type whose values always repeat all raise the same kind of number,
and the edge that carries it is the explanation. A window without edges (no events) scores
``floor``, the lowest score seen on held-out normal windows.

**Threshold**: :meth:`GladDetector.calibrate` sets ``threshold`` to the
``threshold_quantile`` quantile of held-out normal windows' scores; :meth:`fit` calls it
with ``validation`` or, without it, with the last ``calibration_fraction`` of the windows it
was given (those are then not trained on). A window is anomalous when its score is above it.

**Device**: CUDA when available (``device="auto"``), bfloat16 autocast there; the same code
runs in float32 on CPU. Checkpoints are ``model.safetensors`` + ``config.json`` (no pickle).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from logpipe.detect.embed import TemplateEmbedder
from logpipe.detect.fields import FieldExtractor
from logpipe.detect.graphs import (
    EDGE_KIND_NAMES,
    NODE_TEMPLATE,
    NUM_NODE_TYPES,
    GraphBuilder,
    TextEmbedder,
)
from logpipe.detect.windows import EdgeExplanation, Event, Window, WindowScore
from logpipe.errors import ModelError, UsageError

from .config import GladConfig
from .corrupt import Corruptor
from .network import GladNet
from .vocab import Vocabulary, build_vocabulary, edge_identities, unique_sorted

__all__ = ["GladDetector", "GladStats"]

FORMAT = "logpipe-glad"
VERSION = 1
_WEIGHTS = "model.safetensors"
_CONFIG = "config.json"


@dataclass
class GladStats:
    """Counters of training and scoring (reported by the CLI and the benchmark)."""

    train_windows: int = 0
    skipped_anomalous: int = 0
    calibration_windows: int = 0
    train_steps: int = 0
    train_seconds: float = 0.0
    final_loss: float = float("nan")
    windows_scored: int = 0
    empty_windows: int = 0
    unseen_templates: int = 0
    unseen_entities: int = 0
    device: str = "cpu"


@dataclass
class _Scored:
    """Per-window results of one scoring pass over a chunk."""

    scores: np.ndarray
    edges: list[list[EdgeExplanation]] = field(default_factory=list)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' asked for, but torch sees no CUDA device; use 'auto'")
    return torch.device(name)


class GladDetector:
    """GLAD: graph anomaly detection over windows of parsed events (module docstring).

    ``embedder`` defaults to MiniLM (:class:`~logpipe.detect.embed.TemplateEmbedder`); any
    object with ``dim`` and ``embed(texts)`` returning unit vectors works. ``quick`` (no
    config given) trains a quarter of the epochs.
    """

    name = "glad"

    def __init__(
        self,
        config: GladConfig | None = None,
        *,
        embedder: TextEmbedder | None = None,
        quick: bool = False,
    ) -> None:
        # quick (benchmarks' --quick): fewer epochs, for a fast look, never for reported figures
        self.config = config or (GladConfig(epochs=10) if quick else GladConfig())
        self.embedder: TextEmbedder = embedder if embedder is not None else TemplateEmbedder()
        self.extractor = FieldExtractor()
        self.builder = GraphBuilder(
            self.config.graph, extractor=self.extractor, embedder=self.embedder
        )
        self.device = _resolve_device(self.config.device)
        self.threshold = float("nan")
        self.floor = 0.0
        self.stats = GladStats(device=str(self.device))
        self.vocab: Vocabulary | None = None
        self.net: GladNet | None = None
        self._tensors: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ training
    def fit(self, windows: Sequence[Window], validation: Sequence[Window] | None = None) -> None:
        """Train on normal ``windows`` and set ``threshold`` (see the module docstring).

        Windows labelled anomalous (``label == 1``) are skipped and counted: GLAD learns
        what normal looks like. Raises :class:`UsageError` when no normal window has events.
        """
        cfg = self.config
        normal = [w for w in windows if w.label != 1]
        self.stats.skipped_anomalous = len(windows) - len(normal)
        if validation is None:
            held = int(len(normal) * cfg.calibration_fraction) if len(normal) >= 5 else 0
            train, calibration = normal[: len(normal) - held], normal[len(normal) - held :]
        else:
            train, calibration = normal, [w for w in validation if w.label != 1]
        train = [w for w in train if w.events]
        if not train:
            raise UsageError("GLAD needs at least one normal window with events to train on")
        with self._threads():
            self._fit(train, calibration)

    def _fit(self, train: list[Window], calibration: list[Window]) -> None:
        cfg = self.config
        started = time.perf_counter()
        self.vocab = build_vocabulary(
            train,
            self.extractor,
            self.embedder.embed,
            min_count=cfg.min_count,
            max_entity_vocab=cfg.max_entity_vocab,
            max_events=cfg.max_events,
            held_out=calibration,
        )
        self._make_net()
        self._train(train)
        self.stats.train_windows = len(train)
        self.stats.train_seconds = time.perf_counter() - started
        self.calibrate(calibration if calibration else train)

    def _make_net(self) -> None:
        assert self.vocab is not None
        cfg = self.config
        with self._seeded(cfg.seed):
            self.net = GladNet(
                text_dim=self.builder.text_dim,
                node_types=NUM_NODE_TYPES,
                value_rows=self.vocab.rows,
                hidden=cfg.hidden,
                heads=cfg.heads,
                layers=cfg.gnn_layers,
                snapshots=cfg.snapshots,
                dropout=cfg.dropout,
            ).to(self.device)
        self._load_vocab_tensors()

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """Run with the configured torch intra-op threads, then restore the previous count."""
        threads = self.config.threads
        if threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    @contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """Seed torch inside a forked RNG, so the caller's global RNG state is left alone."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _train(self, train: list[Window]) -> None:
        assert self.vocab is not None and self.net is not None
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        originals = self.builder.build_many(train)
        known_edges = unique_sorted(self._edge_idents(g) for g in originals)
        donors = self._donors(train, rng)
        corruptor = Corruptor(
            self.extractor,
            self.vocab.pools,
            donors,
            rate=cfg.corrupt_rate,
            max_corruptions=cfg.max_corruptions,
            crop_probability=cfg.crop_probability,
            rng=rng,
        )
        net = self.net
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        steps_per_epoch = math.ceil(len(train) / cfg.batch_windows)
        total = min(cfg.max_steps, cfg.epochs * steps_per_epoch)
        # one-cycle schedule; its warm-up and decay phases need two steps each, so a short
        # run (a few windows, one epoch) gets a schedule of at least four steps
        sched_steps = max(total, 4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser,
            max_lr=cfg.learning_rate,
            total_steps=sched_steps,
            pct_start=max(0.1, 2.0 / sched_steps),
        )
        step = 0
        loss_value = float("nan")
        with self._seeded(cfg.seed + 1):
            net.train()
            while step < total:
                order = rng.permutation(len(train))
                for start in range(0, len(train), cfg.batch_windows):
                    if step >= total:
                        break
                    chunk = [train[i] for i in order[start : start + cfg.batch_windows]]
                    corrupted = [corruptor.corrupt(w, cfg.max_events) for w in chunk]
                    graphs = [self.builder.build(w) for w in corrupted]
                    labels = [
                        torch.from_numpy(~np.isin(self._edge_idents(g), known_edges))
                        for g in graphs
                    ]
                    loss = self._loss(graphs, torch.cat(labels))
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    optimiser.step()
                    scheduler.step()
                    loss_value = float(loss.detach())
                    step += 1
            net.eval()
        self.stats.train_steps = step
        self.stats.final_loss = loss_value

    def _donors(self, train: list[Window], rng: np.random.Generator) -> list[Event]:
        """Events that substitution corruption draws from (a bounded uniform sample)."""
        limit = self.config.max_events
        events = [e for w in train for e in w.events[:limit]]
        if len(events) > 100_000:
            events = [events[i] for i in rng.choice(len(events), 100_000, replace=False)]
        return events

    def _loss(self, graphs: list[Data], labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        batch = Batch.from_data_list(graphs).to(self.device)
        y = labels.to(self.device, torch.float32)
        with self._autocast():
            logits, _, _ = self._forward(batch)
        logits = logits.float()
        anomalous = float(y.sum())
        weight = torch.tensor(
            min(50.0, max(1.0, (len(y) - anomalous) / max(anomalous, 1.0))), device=self.device
        )
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=weight)
        if anomalous > 0:
            edge_graph = batch.batch[batch.edge_index[0]]
            normal_logits = torch.where(y == 0, logits, torch.full_like(logits, -torch.inf))
            hardest = torch.full((batch.num_graphs,), -torch.inf, device=self.device)
            hardest = hardest.scatter_reduce(0, edge_graph, normal_logits, reduce="amax")
            neg = (y == 1) & torch.isfinite(hardest[edge_graph])
            if bool(neg.any()):
                gap = cfg.margin - logits[neg] + hardest[edge_graph[neg]]
                loss = loss + cfg.margin_weight * torch.relu(gap).mean()
        return loss

    def _edge_idents(self, graph: Data) -> np.ndarray:
        """Identity of each edge: endpoints by known key or their type's "unknown" marker."""
        assert self.vocab is not None
        keys = graph.node_key.numpy()
        types = graph.node_type.numpy()
        known = self.vocab.entity_keys
        pos = np.searchsorted(known, keys).clip(max=max(len(known) - 1, 0))
        is_known = known[pos] == keys if len(known) else np.zeros(len(keys), np.bool_)
        unknown_entity = (types >= 2) & ~is_known
        ident = np.where(unknown_entity, -(types.astype(np.int64) + 1), keys)
        return edge_identities(ident, graph.edge_index.numpy(), graph.edge_kind.numpy())

    # ------------------------------------------------------------------ scoring
    def _autocast(self) -> AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _load_vocab_tensors(self) -> None:
        assert self.vocab is not None
        v = self.vocab
        dev = self.device
        self._tensors = {
            "entity_keys": torch.from_numpy(v.entity_keys).to(dev),
            "template_keys": torch.from_numpy(v.template_keys).to(dev),
            "template_vectors": torch.from_numpy(v.template_vectors).to(dev),
            "entity_novelty": torch.from_numpy(v.entity_novelty()).to(dev, torch.float32),
            "template_loo": torch.from_numpy(v.template_loo).to(dev, torch.float32),
        }

    @staticmethod
    def _lookup(sorted_keys: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position of each key in ``sorted_keys`` and whether it is there."""
        if sorted_keys.numel() == 0:
            return torch.zeros_like(keys), torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
        return pos, sorted_keys[pos] == keys

    def _node_terms(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Value embedding row, novelty (nats) and "unseen template" flag of every node."""
        assert self.vocab is not None
        t = self._tensors
        types, keys = batch.node_type, batch.node_key
        is_entity = types >= 2
        pos, known = self._lookup(t["entity_keys"], keys)
        value_row = torch.where(is_entity & known, NUM_NODE_TYPES + pos, types)
        novelty = torch.where(
            is_entity & ~known,
            t["entity_novelty"][types],
            torch.zeros_like(types, dtype=torch.float32),
        )
        _, template_known = self._lookup(t["template_keys"], keys)
        unseen = (types == NODE_TEMPLATE) & ~template_known
        if bool(unseen.any()):
            vectors = t["template_vectors"]
            if vectors.shape[0]:
                sims = batch.x[unseen].float() @ vectors.T
                distance = (1.0 - sims.max(dim=1).values).clamp(0.0, 2.0)
            else:
                distance = torch.ones(int(unseen.sum()), device=keys.device)
            loo = t["template_loo"]
            at_least = loo.numel() - torch.searchsorted(loo, distance.contiguous(), side="left")
            q = (at_least.float() + 1.0) / (loo.numel() + 1.0)
            novelty[unseen] = -math.log(self.vocab.template_p_new) - torch.log(q)
        self.stats.unseen_templates += int(unseen.sum())
        self.stats.unseen_entities += int((is_entity & ~known).sum())
        return value_row, novelty, unseen

    def _forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Edge anomaly logits, node novelty and unseen-template flags of a batch."""
        assert self.net is not None
        value_row, novelty, unseen = self._node_terms(batch)
        net = self.net
        x0 = net.node_input(batch.x, batch.node_type, value_row)
        r, context = net.encode(
            x0,
            node_snaps=batch.node_snaps,
            edge_index=batch.edge_index,
            edge_kind=batch.edge_kind,
            edge_snaps=batch.edge_snaps,
            batch=batch.batch,
            num_graphs=batch.num_graphs,
        )
        logits = net.score_edges(
            x0,
            r,
            context=context,
            edge_index=batch.edge_index,
            edge_kind=batch.edge_kind,
            edge_graph=batch.batch[batch.edge_index[0]],
        )
        return logits, novelty, unseen

    def _chunks(self, windows: Sequence[Window]) -> Iterator[Sequence[Window]]:
        size = self.config.score_batch_windows
        for start in range(0, len(windows), size):
            yield windows[start : start + size]

    def _score_chunk(self, windows: Sequence[Window], top_k: int) -> _Scored:
        graphs = self.builder.build_many(windows)
        batch = Batch.from_data_list(graphs).to(self.device)
        with torch.inference_mode(), self._autocast():
            logits, novelty, unseen = self._forward(batch)
        ei = batch.edge_index
        # the scorer never saw a template like an unseen one: its logit on such an edge is
        # an extrapolation, not evidence; the template's novelty already counts it
        logits = logits.float()
        logits = torch.where(unseen[ei[0]] | unseen[ei[1]], logits.clamp(max=0.0), logits)
        total = logits + novelty[ei[0]] + novelty[ei[1]]
        edge_graph = batch.batch[ei[0]]
        g = batch.num_graphs
        best = torch.full((g,), -torch.inf, device=total.device)
        best = best.scatter_reduce(0, edge_graph, total, reduce="amax")
        scores = best.cpu().numpy().astype(np.float64)
        empty = ~np.isfinite(scores)
        scores[empty] = self.floor
        self.stats.windows_scored += g
        self.stats.empty_windows += int(empty.sum())
        out = _Scored(scores)
        if top_k > 0:
            out.edges = self._explain_edges(batch, total, edge_graph, top_k)
        return out

    def _explain_edges(
        self, batch: Batch, total: torch.Tensor, edge_graph: torch.Tensor, top_k: int
    ) -> list[list[EdgeExplanation]]:
        scores = total.cpu().numpy()
        graph_of = edge_graph.cpu().numpy()
        ei = batch.edge_index.cpu().numpy()
        kinds = batch.edge_kind.cpu().numpy()
        counts = batch.edge_count.cpu().numpy()
        ptr = batch.ptr.cpu().numpy()
        names: list[list[str]] = batch.node_names
        order = np.lexsort((-scores, graph_of))  # by graph, then by score descending
        out: list[list[EdgeExplanation]] = [[] for _ in range(batch.num_graphs)]
        for e in order.tolist():
            g = int(graph_of[e])
            if len(out[g]) >= top_k:
                continue
            base = int(ptr[g])
            out[g].append(
                EdgeExplanation(
                    source=names[g][int(ei[0, e]) - base],
                    target=names[g][int(ei[1, e]) - base],
                    kind=EDGE_KIND_NAMES[int(kinds[e])],
                    score=float(scores[e]),
                    count=int(counts[e]),
                )
            )
        return out

    def _require_fitted(self) -> None:
        if self.net is None or self.vocab is None:
            raise UsageError("GLAD is not trained: call fit() or load() first")

    def warm_templates(self, templates: Sequence[str]) -> None:
        """Embed ``templates`` now (e.g. every template a parser has mined), so scoring does
        not pay for them when they first appear: a pipeline embeds a template when it is
        mined, once, and scores lines at full speed afterwards."""
        self.embedder.embed(list(dict.fromkeys(templates)))

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        """One score per window (higher = more anomalous), in input order."""
        self._require_fitted()
        with self._threads():
            parts = [self._score_chunk(chunk, 0).scores for chunk in self._chunks(windows)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    def explain(self, windows: Sequence[Window], top_k: int = 5) -> list[WindowScore]:
        """Scores with the ``top_k`` highest-scoring edges of every window."""
        self._require_fitted()
        out: list[WindowScore] = []
        for chunk in self._chunks(windows):
            with self._threads():
                scored = self._score_chunk(chunk, top_k)
            for w, s, edges in zip(chunk, scored.scores.tolist(), scored.edges, strict=True):
                out.append(
                    WindowScore(
                        key=w.key,
                        start_ns=w.start_ns,
                        end_ns=w.end_ns,
                        score=s,
                        threshold=self.threshold,
                        anomalous=bool(s > self.threshold),
                        edges=tuple(edges),
                    )
                )
        return out

    def calibrate(self, validation: Sequence[Window]) -> float:
        """Set (and return) ``threshold`` from held-out normal windows (module docstring)."""
        self._require_fitted()
        normal = [w for w in validation if w.label != 1 and w.events]
        if not normal:
            raise UsageError("calibration needs at least one normal window with events")
        self.floor = 0.0
        scores = self.score(normal)
        self.floor = float(scores.min())
        self.threshold = float(np.quantile(scores, self.config.threshold_quantile, method="higher"))
        self.stats.calibration_windows = len(normal)
        return self.threshold

    def report(self) -> dict[str, Any]:
        """Every counter: training, scoring, graph bounds and field extraction."""
        return {
            "glad": asdict(self.stats),
            "graphs": asdict(self.builder.stats),
            "fields": asdict(self.extractor.stats),
            "threshold": self.threshold,
        }

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` (weights, vocabularies) and ``config.json``."""
        from safetensors.torch import save_file  # noqa: PLC0415 - optional ML dependency

        self._require_fitted()
        assert self.net is not None and self.vocab is not None
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()
        }
        v = self.vocab
        tensors.update(
            {
                "vocab.entity_keys": torch.from_numpy(v.entity_keys),
                "vocab.template_keys": torch.from_numpy(v.template_keys),
                "vocab.template_vectors": torch.from_numpy(v.template_vectors),
                "vocab.p_new": torch.from_numpy(v.p_new),
                "vocab.template_loo": torch.from_numpy(v.template_loo),
            }
        )
        meta = {
            "detector": self.name,  # what logpipe.detect.loading dispatches on
            "format": FORMAT,
            "version": VERSION,
            "config": self.config.to_json(),
            "text_dim": self.builder.text_dim,
            "threshold": self.threshold,
            "floor": self.floor,
            "template_p_new": v.template_p_new,
            "template_names": v.template_names,
            "stats": asdict(self.stats),
        }
        tmp = out / (_WEIGHTS + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(out / _WEIGHTS)
        tmp_json = out / (_CONFIG + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp_json.replace(out / _CONFIG)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        embedder: TextEmbedder | None = None,
        device: str | None = None,
    ) -> GladDetector:
        """A detector saved by :meth:`save` (``device`` overrides the saved one)."""
        from safetensors import SafetensorError  # noqa: PLC0415 - optional ML dependency
        from safetensors.torch import load_file  # noqa: PLC0415

        root = Path(directory)
        config_path, weights_path = root / _CONFIG, root / _WEIGHTS
        if not config_path.is_file() or not weights_path.is_file():
            raise ModelError(f"not a GLAD model (needs {_CONFIG} and {_WEIGHTS})", path=str(root))
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"unreadable {_CONFIG}: {exc}", path=str(root)) from exc
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ModelError(
                f"{_CONFIG}: format {meta.get('format')!r} version {meta.get('version')!r};"
                f" this logpipe reads {FORMAT!r} version {VERSION}: retrain the model",
                path=str(root),
            )
        data = dict(meta["config"])
        if device is not None:
            data["device"] = device
        detector = cls(GladConfig.from_json(data), embedder=embedder)
        if detector.builder.text_dim != int(meta["text_dim"]):
            raise ModelError(
                f"trained with {meta['text_dim']}-d text vectors, the embedder gives"
                f" {detector.builder.text_dim}",
                path=str(root),
            )
        try:
            tensors = load_file(str(weights_path))
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"unreadable {_WEIGHTS}: {exc}", path=str(root)) from exc
        detector.vocab = Vocabulary(
            entity_keys=tensors["vocab.entity_keys"].numpy(),
            template_keys=tensors["vocab.template_keys"].numpy(),
            template_names=list(meta["template_names"]),
            template_vectors=tensors["vocab.template_vectors"].numpy(),
            p_new=tensors["vocab.p_new"].numpy(),
            template_p_new=float(meta["template_p_new"]),
            template_loo=tensors["vocab.template_loo"].numpy(),
            pools={},
        )
        detector._make_net()
        assert detector.net is not None
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        detector.net.load_state_dict(state)
        detector.net.eval()
        detector.threshold = float(meta["threshold"])
        detector.floor = float(meta["floor"])
        return detector
