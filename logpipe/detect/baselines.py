"""The standard baselines GLAD is measured against, on exactly the same windows.

* :class:`PCADetector`: Xu et al. (SOSP 2009) — event-count vectors (TF-IDF weighted,
  centred) projected on the principal subspace that explains most of the training variance;
  the score is the squared prediction error (SPE, the residual norm Xu et al. threshold with
  the Q-statistic).
* :class:`IsolationForestDetector`: scikit-learn's IsolationForest on raw count vectors;
  the score is the negated ``score_samples`` (shorter isolation paths = more anomalous).
* :class:`DeepLogDetector`: Du et al. (CCS 2017) — an LSTM predicts each event from the ``h``
  events before it; an event outside the top ``g`` predictions (or never seen in training)
  is a miss; the window score is its number of misses.

Each implements :class:`~logpipe.detect.windows.Detector`: ``fit`` on normal training windows
only, ``score`` gives higher = more anomalous. Thresholds are *not* chosen here: the
benchmark applies one rule to every detector (:mod:`logpipe.detect.metrics`). All three are
deterministic (fixed seeds, the global torch RNG is restored after use) and run on CPU; the
hyper-parameters are the published defaults, the same for every data set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from torch import nn

from logpipe.detect.vocab import PAD, UNKNOWN, EventVocabulary
from logpipe.detect.windows import Window
from logpipe.errors import UsageError

__all__ = ["DeepLogDetector", "IsolationForestDetector", "PCADetector", "baselines"]


def _need_fit(vocab: EventVocabulary | None, name: str) -> EventVocabulary:
    if vocab is None:
        raise UsageError(f"{name}: score() before fit()")
    return vocab


def _need_windows(windows: Sequence[Window], name: str) -> None:
    if not windows:
        raise UsageError(f"{name}: no training windows to fit on")


class PCADetector:
    """Xu et al.'s PCA residual detector on event-count vectors.

    ``variance`` is the share of training variance the normal subspace keeps (0.95 in the
    loglizer implementation of Xu et al.); ``tfidf`` weights each event by
    ``log((1 + N) / (1 + df))`` (``df``: training windows holding it) before centring, so a
    rare event weighs more than a chatty one. Events unseen in training land in one column
    with zero training variance: they fall entirely in the residual.
    """

    name = "PCA"
    device = "cpu"

    def __init__(self, variance: float = 0.95, *, tfidf: bool = True) -> None:
        if not 0.0 < variance <= 1.0:
            raise UsageError("PCA: variance must be in (0, 1]")
        self.variance = variance
        self.tfidf = tfidf
        self.vocab: EventVocabulary | None = None
        self._idf = np.zeros(0)
        self._mean = np.zeros(0)
        self._components = np.zeros((0, 0))

    def _weigh(self, counts: np.ndarray) -> np.ndarray:
        return counts * self._idf if self.tfidf else counts

    def fit(self, windows: Sequence[Window]) -> None:
        _need_windows(windows, self.name)
        self.vocab = EventVocabulary.fit(windows)
        counts = self.vocab.counts(windows)
        df = (counts > 0).sum(axis=0)
        self._idf = np.log((1.0 + len(windows)) / (1.0 + df)) + 1.0
        x = self._weigh(counts)
        self._mean = x.mean(axis=0)
        centred = x - self._mean
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        var = s**2
        total = float(var.sum())
        if total <= 0.0:  # every training window identical: the subspace is empty
            self._components = np.zeros((0, x.shape[1]))
            return
        share = np.cumsum(var) / total
        k = int(np.searchsorted(share, self.variance - 1e-12) + 1)
        self._components = vt[:k]

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        vocab = _need_fit(self.vocab, self.name)
        y = self._weigh(vocab.counts(windows)) - self._mean
        residual = y - (y @ self._components.T) @ self._components
        spe: np.ndarray = np.einsum("ij,ij->i", residual, residual)
        return spe


class IsolationForestDetector:
    """scikit-learn's IsolationForest on event-count vectors (100 trees, fixed seed)."""

    name = "IsolationForest"
    device = "cpu"

    def __init__(self, n_estimators: int = 100, *, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.seed = seed
        self.vocab: EventVocabulary | None = None
        self._forest: IsolationForest | None = None

    def fit(self, windows: Sequence[Window]) -> None:
        _need_windows(windows, self.name)
        self.vocab = EventVocabulary.fit(windows)
        forest = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        forest.fit(self.vocab.counts(windows))
        self._forest = forest

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        vocab = _need_fit(self.vocab, self.name)
        assert self._forest is not None
        scores: np.ndarray = -self._forest.score_samples(vocab.counts(windows))
        return scores.astype(np.float64)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, then restore the previous count."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _NextEvent(nn.Module):
    """DeepLog's model: embedding → stacked LSTM → logits over the vocabulary."""

    def __init__(self, vocab_size: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=PAD)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embed(history))
        logits: torch.Tensor = self.out(hidden[:, -1])
        return logits


class DeepLogDetector:
    """DeepLog's next-event LSTM: a window's score is how many of its events were surprises.

    Every event of a window is predicted from the ``history`` events before it in the
    window (left-padded, so short sessions are scored from their first event). A prediction
    misses when the true id is not among the ``top_g`` most likely, or was never seen in
    training.

    ``threads`` is torch's intra-op thread count while fitting and scoring (restored after;
    None leaves it alone): the model is so small that a second OpenMP thread only adds
    synchronisation, and on a busy two-core machine two threads trained 14x slower than
    one in our measurements.

    Defaults are DeepLog's (``h=10``, two LSTM layers of 64) except that ``g`` is
    scaled to the vocabulary when not given: DeepLog's ``g=9`` was set for HDFS's 29 event
    types, about a third of them, so ``g = min(9, ceil(events seen in training / 3))``. A
    fixed ``g=9`` would accept *every* event of a log with 9 event types or fewer, which
    would blind the model by its settings rather than by what the data holds.
    """

    name = "DeepLog"

    def __init__(
        self,
        *,
        history: int = 10,
        top_g: int | None = None,
        hidden: int = 64,
        layers: int = 2,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        device: str = "cpu",
        threads: int | None = 1,
    ) -> None:
        if history < 1 or (top_g is not None and top_g < 1) or epochs < 0 or batch_size < 1:
            raise UsageError("DeepLog: history, top_g, batch_size >= 1 and epochs >= 0")
        self.history = history
        self.top_g = top_g
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device
        self.threads = threads
        self.vocab: EventVocabulary | None = None
        self._model: _NextEvent | None = None

    def candidates(self) -> int:
        """``g``: how many of the most likely next events count as expected."""
        if self.top_g is not None:
            return self.top_g
        seen = len(_need_fit(self.vocab, self.name).ids)
        return max(1, min(9, math.ceil(seen / 3)))

    def _samples(self, windows: Sequence[Window]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(histories, targets, window of each sample) over every event of ``windows``."""
        vocab = _need_fit(self.vocab, self.name)
        lookup = vocab.index()
        h = self.history
        hist: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        owner: list[np.ndarray] = []
        for w, window in enumerate(windows):
            codes = vocab.encode(window, lookup)
            if not len(codes):
                continue
            padded = np.concatenate((np.full(h, PAD, dtype=np.int64), codes))
            # row i: the h ids before event i (a sliding view, copied once)
            hist.append(np.lib.stride_tricks.sliding_window_view(padded, h)[: len(codes)])
            targets.append(codes)
            owner.append(np.full(len(codes), w, dtype=np.int64))
        if not hist:
            empty = np.zeros((0, h), dtype=np.int64)
            return empty, np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(hist), np.concatenate(targets), np.concatenate(owner)

    def fit(self, windows: Sequence[Window]) -> None:
        _need_windows(windows, self.name)
        with _torch_threads(self.threads):
            self._fit(windows)

    def _fit(self, windows: Sequence[Window]) -> None:
        self.vocab = EventVocabulary.fit(windows)
        x, y, _ = self._samples(windows)
        device = torch.device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = _NextEvent(self.vocab.size, self.hidden, self.layers).to(device)
            optimiser = torch.optim.Adam(model.parameters(), lr=self.lr)
            loss_fn = nn.CrossEntropyLoss()
            xs = torch.from_numpy(x).to(device)
            ys = torch.from_numpy(y).to(device)
            order_rng = torch.Generator().manual_seed(self.seed)
            model.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(xs), generator=order_rng).to(device)
                for start in range(0, len(xs), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimiser.zero_grad()
                    loss = loss_fn(model(xs[batch]), ys[batch])
                    loss.backward()
                    optimiser.step()
        model.eval()
        self._model = model

    def score(self, windows: Sequence[Window]) -> np.ndarray:
        with _torch_threads(self.threads):
            return self._score(windows)

    def _score(self, windows: Sequence[Window]) -> np.ndarray:
        vocab = _need_fit(self.vocab, self.name)
        assert self._model is not None
        x, y, owner = self._samples(windows)
        misses = np.zeros(len(x), dtype=bool)
        g = min(self.candidates(), vocab.size)
        device = torch.device(self.device)
        with torch.inference_mode():
            for start in range(0, len(x), 8192):
                xs = torch.from_numpy(x[start : start + 8192]).to(device)
                ys = torch.from_numpy(y[start : start + 8192]).to(device)
                top = self._model(xs).topk(g, dim=1).indices
                hit = (top == ys[:, None]).any(dim=1) & (ys != UNKNOWN)
                misses[start : start + len(xs)] = ~hit.cpu().numpy()
        return np.bincount(owner, weights=misses, minlength=len(windows)).astype(np.float64)


Baseline = PCADetector | IsolationForestDetector | DeepLogDetector


def baselines(*, seed: int = 0, quick: bool = False) -> list[Baseline]:
    """The three baselines with their default settings (``quick``: fewer DeepLog epochs)."""
    epochs = 10 if quick else 30
    return [
        PCADetector(),
        IsolationForestDetector(seed=seed),
        DeepLogDetector(seed=seed, epochs=epochs),
    ]
