"""Candidate queries from the language model: the generator behind ``logpipe ask``.

One greedy reply, plus ``n - 1`` sampled ones (one batched ``generate`` call, sharing the
prompt's prefill), each stopped at the end-of-turn token or a blank line, with at most
``max_new_tokens`` new tokens: queries are one line, and every token costs ~60 ms on this
CPU. Sampling draws from a seeded generator inside ``torch.random.fork_rng``, so the same
prompt gives the same candidates and the caller's random state is untouched.

It satisfies :class:`logpipe.nl.answer.Generator`; what comes out is never trusted as is
(:func:`logpipe.nl.answer.answer` parses, validates and repairs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from logpipe.errors import ModelError
from logpipe.nl.prompt import Prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["STOP_TEXTS", "ModelGenerator", "apply_adapter"]


STOP_TEXTS = ("\n\n", "\nQ:")  # a blank line or a next question ends a reply


def _stop_at_text(tokenizer: PreTrainedTokenizerBase, start: int) -> Any:
    """A stopping criterion: a row is done once its reply holds one of :data:`STOP_TEXTS`.

    Ours rather than ``stop_strings``: that one needs a tokenizer whose vocabulary it can
    read back, and this works with any (the tests use a character tokenizer)."""
    import torch  # noqa: PLC0415
    from transformers import StoppingCriteria, StoppingCriteriaList  # noqa: PLC0415

    class _StopAtText(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            done = [any(t in str(tokenizer.decode(row[start:])) for t in STOP_TEXTS)
                    for row in input_ids]  # fmt: skip
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_StopAtText()])


class ModelGenerator:
    """``generate(prompt, n)`` -> ``n`` replies of a causal LM with a chat template."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed

    def _run(self, enc: Any, **kwargs: Any) -> list[str]:
        import torch  # noqa: PLC0415

        tok = self.tokenizer
        with torch.inference_mode():
            out = self.model.generate(  # type: ignore[operator]
                **enc,
                max_new_tokens=self.max_new_tokens,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                stopping_criteria=_stop_at_text(tok, enc["input_ids"].shape[1]),
                **kwargs,
            )
        start = enc["input_ids"].shape[1]
        return [str(tok.decode(row[start:], skip_special_tokens=True)) for row in out]

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        """The greedy reply first, then ``n - 1`` samples."""
        import torch  # noqa: PLC0415

        encoded: Any = self.tokenizer.apply_chat_template(
            prompt.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        enc = {k: v.to(self.model.device) for k, v in encoded.items()}
        replies = self._run(enc, do_sample=False)
        if n > 1:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                replies += self._run(enc, do_sample=True, temperature=self.temperature,
                                     top_p=self.top_p, num_return_sequences=n - 1)  # fmt: skip
        return replies[:n]


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
