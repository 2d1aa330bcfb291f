"""Candidate queries from the language model: the generator behind ``logpipe ask``.

Why a decoding loop of our own rather than ``model.generate``: on a 2-core CPU a token costs
~60 ms and the prompt's prefill a second or more, so the loop is shaped around not paying
for anything twice or for anything unneeded:

* **one prefill** of the prompt; its KV cache is repeated for the ``n`` candidates, which
  then decode as one batch (for a 135M model a decoding step reads every weight once,
  however many rows, so extra candidates cost little);
* row 0 is **greedy** (the first candidate, the one a tuned model gets right most often),
  rows 1.. are sampled (temperature, top-p) from a seeded generator of their own, so the
  same prompt gives the same candidates and the caller's random state is untouched;
* **early stop per row**: a row leaves the batch (its cache rows are dropped) at the
  end-of-turn token or as soon as its reply holds a complete query
  (:func:`logpipe.nl.complete.reply_end`: balanced brackets and strings, then a line that
  does not continue it), and the reply is cut there; the loop ends when no row is left;
* a **short cap**, ``max_new_tokens`` = 160, which 95.5% of the NL2LogQL gold queries fit
  in SmolLM2's tokenizer (128 fit 90%).

It satisfies :class:`logpipe.nl.answer.Generator`; what comes out is never trusted as is
(:func:`logpipe.nl.answer.answer` parses, validates and repairs it). ``last_stats`` holds the
prefill and decoding seconds and the tokens of each reply of the latest call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logpipe.errors import ModelError
from logpipe.nl.complete import reply_end
from logpipe.nl.prompt import Prompt

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["MAX_NEW_TOKENS", "ModelGenerator", "StopRule", "apply_adapter", "line_end",
           "sample_top_p"]  # fmt: skip

MAX_NEW_TOKENS = 160

#: Where a reply ends once it is complete (cut it there), or None while it may still grow.
#: :func:`logpipe.nl.complete.reply_end` for a LogQL query; :func:`line_end` for one line.
StopRule = Callable[[str], int | None]


def line_end(text: str) -> int | None:
    """A one-line reply (a log template) ends at its first newline after some text."""
    head = len(text) - len(text.lstrip())
    at = text.find("\n", head)
    return at if at > head else None


def sample_top_p(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    """One token per row, drawn from the smallest set of tokens whose probability (at
    ``temperature``) reaches ``top_p``."""
    import torch  # noqa: PLC0415

    probs = torch.softmax(logits.float() / max(temperature, 1e-5), dim=-1)
    ordered, index = probs.sort(dim=-1, descending=True)
    ordered[(ordered.cumsum(dim=-1) - ordered) > top_p] = 0.0  # the first token always stays
    pick = torch.multinomial(ordered, 1, generator=generator)
    return index.gather(-1, pick).squeeze(-1)


class ModelGenerator:
    """``generate(prompt, n)`` -> ``n`` replies of a causal LM with a chat template.

    ``stop`` decides where a reply is complete (default: a complete LogQL query); the log
    template parser passes :func:`line_end`, so both share this one decoding loop.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_new_tokens: int = MAX_NEW_TOKENS,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int = 0,
        stop: StopRule = reply_end,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.stop = stop
        self.last_stats: dict[str, Any] = {}

    def _forward(self, input_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
        return out.logits[:, -1, :], out.past_key_values

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        """The greedy reply first, then ``n - 1`` samples, each cut where ``stop`` says."""
        import torch  # noqa: PLC0415

        if n < 1:
            return []
        tok = self.tokenizer
        encoded: Any = tok.apply_chat_template(
            prompt.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        input_ids = encoded["input_ids"].to(self.model.device)
        eos = tok.eos_token_id
        sampler = torch.Generator().manual_seed(self.seed)
        tokens: list[list[int]] = [[] for _ in range(n)]
        replies: list[str | None] = [None] * n
        started = time.perf_counter()
        with torch.inference_mode():
            logits, cache = self._forward(input_ids, None)
            prefill_s = time.perf_counter() - started
            if n > 1:
                cache.batch_repeat_interleave(n)
                logits = logits.expand(n, -1)
            active = list(range(n))  # the candidate of each batch row
            for step in range(self.max_new_tokens):
                if active == [0]:  # the greedy row alone
                    chosen = logits.argmax(dim=-1).cpu()
                else:
                    chosen = sample_top_p(logits.cpu(), self.temperature, self.top_p, sampler)
                    if active[0] == 0:
                        chosen[0] = int(logits[0].argmax())
                keep: list[int] = []
                for row, cand in enumerate(active):
                    token = int(chosen[row])
                    if token == eos:
                        replies[cand] = str(tok.decode(tokens[cand], skip_special_tokens=True))
                        continue
                    tokens[cand].append(token)
                    text = str(tok.decode(tokens[cand], skip_special_tokens=True))
                    end = self.stop(text)
                    if end is not None:
                        replies[cand] = text[:end]
                        continue
                    keep.append(row)
                if not keep:
                    active = []
                    break
                if step == self.max_new_tokens - 1:
                    break  # at the cap: no forward pass for a token nobody reads
                if len(keep) < len(active):
                    cache.batch_select_indices(torch.tensor(keep))
                    chosen = chosen[keep]
                    active = [active[row] for row in keep]
                logits, cache = self._forward(chosen[:, None].to(input_ids.device), cache)
        for cand in active:  # ran into the cap
            replies[cand] = str(tok.decode(tokens[cand], skip_special_tokens=True))
        self.last_stats = {
            "prompt_tokens": int(input_ids.shape[1]),
            "prefill_s": prefill_s,
            "decode_s": time.perf_counter() - started - prefill_s,
            "reply_tokens": [len(t) for t in tokens],
        }
        return [r or "" for r in replies]


def apply_adapter(model: PreTrainedModel, adapter_dir: Path) -> PreTrainedModel:
    """``model`` with the LoRA adapter of ``adapter_dir`` merged in (no adapter overhead at
    generation time)."""
    from peft import PeftModel  # noqa: PLC0415

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} holds no adapter (adapter_config.json); train one "
                         "with make train-nl2logql")  # fmt: skip
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.eval()
    return merged  # type: ignore[no-any-return]
