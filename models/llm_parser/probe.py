"""A variable probe: which constant tokens of a statistical template are really variables.

Why a probe and not a prompt: asked zero-shot, SmolLM2-135M *lowers* template accuracy at
every margin we tried (it turns true constants such as ``Bye Bye`` into ``<*>``; see the
model card). What the model does know is what a token *is*: its hidden states tell a user
name (``root`` after ``user``), a flag value (``true``) or a Java class from the fixed words
around them. A logistic-regression head over those states, trained on labelled templates of
*other* systems, reads that knowledge out directly, costs one forward pass over the template
(no prompt, no demonstrations, no decoding) and cannot paraphrase: it can only turn a
constant token into ``<*>``, and only when it is confident.

What a row is: one *candidate* token of a statistical template (a whitespace token with a
letter or digit and no ``<*>`` yet), described by the mean and the last of its sub-token
hidden states at a few layers of the model, run over the template text alone. Its label,
for training, comes from aligning the template with the Loghub ground-truth template of
its lines (:func:`truth_labels`): 1 where the truth has a variable at that token, 0 where
the truth keeps it, no label where the two do not align one to one.

The head is stored as safetensors (scaler, weights, bias) with a JSON card of how it was
made; nothing executable is ever loaded.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from logpipe.errors import ModelError
from logpipe.parsing.masking import VAR

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_C",
    "DEFAULT_LAYERS",
    "PROBE_DIR",
    "THRESHOLDS",
    "VarProbe",
    "apply_probe",
    "candidates",
    "fit_probe",
    "is_candidate",
    "piece_features",
    "truth_labels",
]

#: The shipped head (``make train-llm-probe``).
PROBE_DIR = Path(__file__).resolve().parent / "probe"
#: Hidden-state layers read (of SmolLM2-135M's 30; 0 is the embeddings).
DEFAULT_LAYERS = (8, 16, 24, 30)
#: Inverse L2 strength of the logistic regression (chosen by leave-one-system-out: see card).
DEFAULT_C = 0.01
#: Decision thresholds the training script chooses among, by leave-one-system-out.
THRESHOLDS = (0.9, 0.95, 0.98)
_MAX_TOKENS = 512
_WEIGHTS = "probe.safetensors"
_CARD = "probe.json"


def is_candidate(piece: str) -> bool:
    """A constant token the model may turn into a variable: one that holds a letter or a
    digit (punctuation alone is never a value) and no variable already."""
    return VAR not in piece and any(c.isalnum() for c in piece)


def candidates(template: str) -> list[int]:
    """Indices of the whitespace tokens of ``template`` that are candidates."""
    return [i for i, piece in enumerate(template.split()) if is_candidate(piece)]


def truth_labels(template: str, truth: str) -> dict[int, int]:
    """Per token index of ``template``: 1 when the aligned ``truth`` token is a variable
    and ours is not, 0 when the two tokens are equal; tokens that do not align one to one
    (inserted, deleted, or a replaced run of another length) have no label."""
    ours, theirs = template.split(), truth.split()
    out: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.update(dict.fromkeys(range(i1, i2), 0))
        elif op == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                if VAR in theirs[j1 + k] and VAR not in ours[i1 + k]:
                    out[i1 + k] = 1
    return out


def piece_features(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    layers: Sequence[int] = DEFAULT_LAYERS,
) -> tuple[list[int], np.ndarray]:
    """The candidate tokens of ``template`` and one feature row each (float32): per layer,
    the mean and the last of the token's sub-token hidden states. One forward pass over
    the template text (cut at 512 sub-tokens; tokens past the cut are not candidates)."""
    import torch  # noqa: PLC0415

    pieces = template.split()
    wanted = candidates(template)
    width = 2 * len(layers) * int(model.config.hidden_size)
    if not wanted:
        return [], np.zeros((0, width), np.float32)
    text = " ".join(pieces)
    encoded: Any = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = list(encoded["input_ids"])[:_MAX_TOKENS]
    offsets = list(encoded["offset_mapping"])[: len(ids)]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids], device=model.device), output_hidden_states=True)
    states = [out.hidden_states[layer][0].float().cpu().numpy() for layer in layers]
    spans: list[tuple[int, int]] = []
    at = 0
    for piece in pieces:
        start = text.index(piece, at)
        spans.append((start, start + len(piece)))
        at = start + len(piece)
    found: list[int] = []
    rows: list[np.ndarray] = []
    for i in wanted:
        start, end = spans[i]
        toks = [k for k, (a, b) in enumerate(offsets) if a < end and b > start]
        if not toks:
            continue
        found.append(i)
        per_layer = [np.concatenate([h[toks].mean(0), h[toks[-1]]]) for h in states]
        rows.append(np.concatenate(per_layer))
    return found, (np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32))


@dataclass
class VarProbe:
    """Standardise, then logistic regression; a token is a variable above ``threshold``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    layers: tuple[int, ...] = DEFAULT_LAYERS
    card: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(variable) per row."""
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        probs: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        return probs

    def save(self, directory: str | Path) -> None:
        """``probe.safetensors`` (the arrays) and ``probe.json`` (threshold, layers, card)."""
        from safetensors.numpy import save_file  # noqa: PLC0415

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "scale": self.scale, "coef": self.coef}
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()},
                  str(out / _WEIGHTS))  # fmt: skip
        meta = {"intercept": self.intercept, "threshold": self.threshold,
                "layers": list(self.layers), **self.card}  # fmt: skip
        (out / _CARD).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path = PROBE_DIR) -> VarProbe:
        """The head saved by :meth:`save` (ModelError when missing or malformed)."""
        from safetensors import SafetensorError  # noqa: PLC0415
        from safetensors.numpy import load_file  # noqa: PLC0415

        path = Path(directory)
        try:
            meta = json.loads((path / _CARD).read_text())
            arrays = load_file(str(path / _WEIGHTS))
            probe = cls(arrays["mean"], arrays["scale"], arrays["coef"], float(meta["intercept"]),
                        float(meta["threshold"]), tuple(int(x) for x in meta["layers"]),
                        {k: v for k, v in meta.items()
                         if k not in ("intercept", "threshold", "layers")})  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise ModelError(f"cannot load the variable probe in {path}: {exc}") from None
        if not (probe.mean.shape == probe.scale.shape == probe.coef.shape):
            raise ModelError(f"the variable probe in {path} has arrays of different sizes")
        return probe


def fit_probe(
    features: np.ndarray, labels: np.ndarray, *, c: float = DEFAULT_C, threshold: float = 0.95,
    layers: Sequence[int] = DEFAULT_LAYERS,
) -> VarProbe:  # fmt: skip
    """Fit the head on labelled rows (labels 0/1). Classes are weighted to balance: true
    variables are ~3% of the candidates, and an unweighted fit would never say one."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.int64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
    model.fit((x - mean) / scale, y)
    return VarProbe(mean.astype(np.float32), scale.astype(np.float32),
                    model.coef_[0].astype(np.float32), float(model.intercept_[0]), threshold,
                    tuple(layers))  # fmt: skip


def apply_probe(template: str, indices: Sequence[int], probabilities: np.ndarray,
                threshold: float) -> str:  # fmt: skip
    """``template`` with the tokens at ``indices`` whose probability is above
    ``threshold`` written as ``<*>`` (whitespace runs become one space)."""
    change = {i for i, p in zip(indices, probabilities, strict=True) if p > threshold}
    if not change:
        return template
    return " ".join(VAR if i in change else w for i, w in enumerate(template.split()))
