"""The model generator: on a tiny random model, n replies, greedy first, seeded sampling that
leaves the caller's random state alone, adapters merge in; on a scripted model, one prefill
shared by every candidate, one token per step after it, and each reply cut (and its row
dropped from the batch) as soon as it holds a complete query."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("peft")

from logpipe.models.nl2logql.examples import TrainingExample
from logpipe.models.nl2logql.generate import ModelGenerator, apply_adapter, sample_top_p
from logpipe.models.nl2logql.train import TrainConfig, train

from logpipe.errors import ModelError
from logpipe.nl.prompt import Prompt
from tests.tinylm import tiny_model, tiny_tokenizer

PROMPT = Prompt(messages=[{"role": "system", "content": "LogQL."},
                          {"role": "user", "content": "count errors"}])  # fmt: skip


def test_greedy_first_then_seeded_samples() -> None:
    tok = tiny_tokenizer()
    generator = ModelGenerator(tiny_model(len(tok)), tok, max_new_tokens=12, temperature=1.5)
    state = torch.get_rng_state()
    replies = generator.generate(PROMPT, 3)
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is untouched
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert generator.generate(PROMPT, 1) == replies[:1]
    assert generator.generate(PROMPT, 3) == replies  # same seed, same samples
    other = ModelGenerator(generator.model, tok, max_new_tokens=12, temperature=1.5, seed=9)
    assert other.generate(PROMPT, 3)[0] == replies[0]  # greedy does not depend on the seed


def test_an_adapter_merges_into_the_model(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    example = TrainingExample((("system", "LogQL."), ("user", "count errors")),
                              '{a="b"}', "synth", "x")  # fmt: skip
    cfg = TrainConfig(steps=2, batch_size=1, lr=5e-2, warmup_steps=1, rank=4, alpha=8,
                      checkpoint_every=2)  # fmt: skip
    train(tiny_model(len(tok)), tok, [example], cfg, tmp_path, device="cpu")
    base = tiny_model(len(tok))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    merged = apply_adapter(base, tmp_path / "adapter")
    after = merged.state_dict()
    assert before.keys() == after.keys()  # merged: no lora_ parameters left
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ModelError, match="no adapter"):
        apply_adapter(tiny_model(len(tok)), tmp_path / "nothing")


class ScriptedCache:
    """Stands in for a KV cache: which candidate each batch row is, and how far it got."""

    def __init__(self) -> None:
        self.rows = [0]
        self.steps = [0]

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.rows = list(range(repeats))
        self.steps = self.steps * repeats

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.rows = [self.rows[i] for i in indices.tolist()]
        self.steps = [self.steps[i] for i in indices.tolist()]


@dataclass
class Out:
    logits: torch.Tensor
    past_key_values: ScriptedCache


class ScriptedModel:
    """Writes ``scripts[c]`` for candidate ``c``, one character token a step, then the
    end-of-turn token; the logits leave sampling no choice. Records every input shape."""

    device = torch.device("cpu")

    def __init__(self, tok: Any, scripts: list[str]) -> None:
        self.tok, self.scripts = tok, scripts
        self.calls: list[tuple[int, int]] = []

    def __call__(self, input_ids: torch.Tensor, past_key_values: Any, use_cache: bool) -> Out:
        self.calls.append(tuple(input_ids.shape))  # type: ignore[arg-type]
        cache = past_key_values or ScriptedCache()
        logits = torch.full((len(cache.rows), input_ids.shape[1], len(self.tok)), -1e9)
        for row, cand in enumerate(cache.rows):
            script, step = self.scripts[cand], cache.steps[row]
            token = self.tok.convert_tokens_to_ids(script[step]) if step < len(script) else (
                self.tok.eos_token_id)  # fmt: skip
            logits[row, -1, token] = 0.0
            cache.steps[row] += 1
        return Out(logits, cache)


def test_one_prefill_then_one_token_a_step_and_each_reply_cut_at_its_query() -> None:
    tok = tiny_tokenizer()
    # the first token comes from the shared prefill, so every script starts alike
    scripts = ['{a="b"} |= "x"\nThis query finds lines.',
               '{a="b"} |~ "y"',  # ends with the end-of-turn token
               '{a="b"}\n| json\nWith more words to explain it',
               "{ an open brace, so it never ends " * 5]  # fmt: skip
    model = ScriptedModel(tok, scripts)
    generator = ModelGenerator(model, tok, max_new_tokens=40)
    replies = generator.generate(PROMPT, 4)
    assert replies == ['{a="b"} |= "x"', '{a="b"} |~ "y"', '{a="b"}\n| json',
                       scripts[3][:40]]  # fmt: skip
    prompt_len = model.calls[0][1]
    assert prompt_len > 1 and model.calls[0][0] == 1  # the prompt, once, for every candidate
    assert all(width == 1 for _, width in model.calls[1:])  # then one new token a step
    rows = [batch for batch, _ in model.calls[1:]]
    assert rows == sorted(rows, reverse=True) and rows[-1] == 1  # finished rows leave
    assert len(model.calls) == 1 + 40 - 1  # the longest row ran to the cap, no further
    stats = generator.last_stats
    assert stats["prompt_tokens"] == prompt_len
    assert stats["reply_tokens"][0] == len('{a="b"} |= "x"\nT')  # one token past the line end
    assert stats["reply_tokens"][3] == 40


def test_a_single_candidate_is_greedy_and_stops_early() -> None:
    tok = tiny_tokenizer()
    model = ScriptedModel(tok, ['{a="b"}\nExplanation follows here'])
    replies = ModelGenerator(model, tok).generate(PROMPT, 1)
    assert replies == ['{a="b"}']
    assert len(model.calls) == 1 + len('{a="b"}\nE') - 1


def test_top_p_keeps_the_smallest_set_that_reaches_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    drawn = {int(sample_top_p(logits, 1.0, 0.75, gen)) for _ in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.75; 2 and 3 never come
    assert {int(sample_top_p(logits, 1.0, 0.0, gen)) for _ in range(50)} == {0}
