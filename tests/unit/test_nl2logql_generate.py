"""The model generator on a tiny random model: n replies, greedy first, seeded sampling that
leaves the caller's random state alone; adapters merge in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from logpipe.models.nl2logql.examples import TrainingExample
from logpipe.models.nl2logql.generate import ModelGenerator, apply_adapter
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
