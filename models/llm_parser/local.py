"""SmolLM2-135M-Instruct on the CPU as a template backend (``--llm-backend local``).

Three ways to ask it (``mode``):

* ``probe`` (the default): a trained head over the model's hidden states
  (:mod:`logpipe.models.llm_parser.probe`) decides which constant tokens of the statistical
  template are variables. One forward pass over the template text alone; the only mode
  measured to *raise* accuracy (leave-one-system-out, see the model card).
* ``score``: the model only decides which constant tokens of the statistical
  template are variables. The prompt is followed by the statistical template itself,
  teacher-forced, and **one forward pass** gives, before each constant token, the model's
  log-probability of that token against that of ``<*>``; a token becomes ``<*>`` when the
  model prefers the variable by more than ``margin`` nats. The answer is thus constrained
  to the batch's own text (it cannot paraphrase, repeat or drop anything) and costs one
  prefill (~0.3-3 s here), not tens of sequential decoding steps (~60 ms each).
* ``generate``: free greedy generation of the template, stopped at the end of its first
  line (the shared decoding loop of :class:`logpipe.models.nl2logql.generate.ModelGenerator`
  with :func:`~logpipe.models.nl2logql.generate.line_end`), capped near the line's length.
  The untuned 135M model paraphrases and loops often here; the checker catches it.

Whatever the mode, the answer goes through :func:`logpipe.parsing.template_check.check_template`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logpipe.models.llm_parser.probe import (
    PROBE_DIR,
    VarProbe,
    apply_probe,
    is_candidate,
    piece_features,
)
from logpipe.models.llm_parser.prompt import chat_messages

from logpipe.parsing.llm_backends import ParseRequest
from logpipe.parsing.masking import VAR

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["MODES", "LocalBackend"]

MODES = ("probe", "score", "generate")
_MAX_PROMPT_TOKENS = 1536


class LocalBackend:
    """The local model; ``load()`` builds it from the converted SmolLM2 cache."""

    name = "local"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        mode: str = "score",
        margin: float = 0.0,
        probe: VarProbe | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "probe" and probe is None:
            raise ValueError("mode 'probe' needs a probe (VarProbe.load())")
        self.model = model
        self.tokenizer = tokenizer
        self.mode = mode
        self.margin = margin
        self.probe = probe
        self._lock = threading.Lock()  # one forward pass at a time: torch uses every core

    @classmethod
    def load(
        cls, *, mode: str = "probe", margin: float = 0.0, probe_dir: str | Path | None = None
    ) -> LocalBackend:
        """The base model from the safetensors cache (:func:`load_base_model`), and for
        mode ``probe`` the head in ``probe_dir`` (default: the shipped one)."""
        from logpipe.models.nl2logql.loader import load_base_model  # noqa: PLC0415

        probe = VarProbe.load(probe_dir or PROBE_DIR) if mode == "probe" else None
        loaded = load_base_model()
        return cls(loaded.model, loaded.tokenizer, mode=mode, margin=margin, probe=probe)

    def propose(self, request: ParseRequest) -> str:
        """The template: probed, scored or generated; see the module docstring."""
        with self._lock:
            if self.mode == "generate":
                return self._generate(request)
            if self.mode == "probe":
                return self._probe(request)
            return self._score(request)

    def _probe(self, request: ParseRequest) -> str:
        assert self.probe is not None
        template = request.statistical
        indices, features = piece_features(self.model, self.tokenizer, template,
                                           self.probe.layers)  # fmt: skip
        if not indices:
            return template
        probs = self.probe.probabilities(features)
        return str(apply_probe(template, indices, probs, self.probe.threshold))

    def _prompt_ids(self, request: ParseRequest) -> list[int]:
        """The chat prompt's token ids; demonstrations are dropped from the front while it
        is over the cap (the nearest ones are last and stay longest)."""
        demos = list(request.demonstrations)
        while True:
            req = ParseRequest(request.lines, request.statistical, tuple(demos))
            encoded: Any = self.tokenizer.apply_chat_template(
                chat_messages(req), add_generation_prompt=True, tokenize=True, return_dict=True
            )
            ids = [int(i) for i in encoded["input_ids"]]
            if len(ids) <= _MAX_PROMPT_TOKENS or not demos:
                return ids
            demos.pop(0)

    def _score(self, request: ParseRequest) -> str:
        prefs = self.preferences(request)
        pieces = request.statistical.split()
        return " ".join(
            VAR if pref is not None and pref > self.margin else piece
            for piece, pref in zip(pieces, prefs, strict=True)
        )

    def preferences(self, request: ParseRequest) -> list[float | None]:
        """Per whitespace token of the statistical template: how much more the model
        expects ``<*>`` there than the token (log-probability difference, nats), or None
        where the token is not a candidate. One forward pass."""
        import torch  # noqa: PLC0415

        pieces = request.statistical.split()
        if not any(is_candidate(p) for p in pieces):
            return [None] * len(pieces)
        tok = self.tokenizer
        ids = self._prompt_ids(request)
        starts: list[int] = []
        for j, piece in enumerate(pieces):
            starts.append(len(ids))
            ids.extend(tok.encode((" " if j else "") + piece, add_special_tokens=False))
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.model.device))
            logp = torch.log_softmax(out.logits[0].float(), dim=-1)
        prefs: list[float | None] = []
        for j, piece in enumerate(pieces):
            word = tok.encode((" " if j else "") + piece, add_special_tokens=False)
            var = tok.encode((" " if j else "") + VAR, add_special_tokens=False)
            # the first token where the piece and "<*>" part (a shared leading space or
            # bracket is teacher-forced alike, so the choice is made there)
            d = next((i for i, (a, b) in enumerate(zip(word, var, strict=False)) if a != b), None)
            at = starts[j] + (d or 0)
            if not is_candidate(piece) or d is None or at >= len(ids):
                prefs.append(None)
                continue
            row = logp[at - 1]
            prefs.append(float(row[var[d]]) - float(row[word[d]]))
        return prefs

    def _generate(self, request: ParseRequest) -> str:
        from logpipe.models.nl2logql.generate import ModelGenerator, line_end  # noqa: PLC0415

        from logpipe.nl.prompt import Prompt  # noqa: PLC0415

        longest = max((len(line) for line in request.lines), default=0)
        cap = min(160, longest // 2 + 32)  # ~3.5 characters a token, and slack
        generator = ModelGenerator(self.model, self.tokenizer, max_new_tokens=cap, stop=line_end)
        replies: list[str] = generator.generate(Prompt(messages=chat_messages(request)), 1)
        return replies[0]
