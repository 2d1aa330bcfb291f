"""The real SmolLM2 behind ``ask``: our decoding loop agrees with transformers' greedy
``generate`` token for token, the greedy candidate does not depend on how many candidates
decode beside it, and ``ask --backend model`` answers end to end on CPU.

Slow (loads the 135M model from the converted cache; converts it first, ~20 s, when the
cache is missing), so opt-in with ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import ModelError
from logpipe.logql import parse_query
from logpipe.logql.engine import Engine
from logpipe.nl.ask import Asker, AskRequest
from logpipe.nl.backends import ModelCache
from logpipe.nl.prompt import Example, Prompt, PromptBuilder, Schema
from tests.nlfakes import webshop_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generator() -> Any:
    pytest.importorskip("transformers")
    from logpipe.models.nl2logql.generate import ModelGenerator
    from logpipe.models.nl2logql.loader import load_base_model

    try:
        loaded = load_base_model()
    except ModelError as exc:
        pytest.skip(str(exc))
    return ModelGenerator(loaded.model, loaded.tokenizer, max_new_tokens=48)


def _prompt() -> Prompt:
    example = Example("how many errors for api in the last hour?",
                      'sum(count_over_time({app="api"} |= "error" [1h]))')  # fmt: skip
    builder = PromptBuilder([example])
    schema = Schema({"app": ["api", "web"]}, ["Failed login for user <*> from <*>"])
    return builder.build("how many failed logins for web in the last 6 hours?", schema)


def test_the_loop_matches_transformers_greedy_decoding(generator: Any) -> None:
    import torch

    prompt = _prompt()
    (reply,) = generator.generate(prompt, 1)
    produced = generator.last_stats["reply_tokens"][0]
    tok = generator.tokenizer
    enc = tok.apply_chat_template(prompt.messages, add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)  # fmt: skip
    with torch.inference_mode():
        out = generator.model.generate(**enc, max_new_tokens=produced, do_sample=False,
                                       pad_token_id=tok.eos_token_id)  # fmt: skip
    reference = tok.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert reference.startswith(reply)  # our reply is transformers' greedy text, cut early
    assert generator.last_stats["prefill_s"] > 0


def test_the_greedy_candidate_does_not_depend_on_its_neighbours(generator: Any) -> None:
    prompt = _prompt()
    alone = generator.generate(prompt, 1)
    batch = generator.generate(prompt, 3)
    assert len(batch) == 3 and batch[0] == alone[0]
    assert generator.generate(prompt, 3) == batch  # seeded samples


def test_ask_with_the_model_end_to_end(generator: Any, tmp_path: Path) -> None:
    store, end = webshop_store(tmp_path / "store")
    asker = Asker(store, Engine(store), models=ModelCache(loader=lambda adapter: generator))
    result = asker.ask(AskRequest("how many failed logins in the last hour?", backend="model",
                                  candidates=2, end_ns=end))  # fmt: skip
    assert result.backend.name == "model" and "untuned" in result.backend.note
    assert len(result.answer.candidates) == 2
    if result.status == "answered":
        assert result.query is not None
        parse_query(result.query)
    else:
        assert result.query is None and result.answer.closest is not None
