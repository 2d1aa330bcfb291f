"""The real base model: GGUF -> safetensors cache -> load -> generate, on CPU, offline.

Slow (the conversion dequantizes the GGUF: ~15 s here, and writes ~540 MB into a temporary
cache), so opt-in with ``-m slow``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from logpipe.models.nl2logql.loader import cache_is_complete, find_gguf, load_base_model

from logpipe.errors import ModelError
from tests.netguard import no_network

__all__ = ["no_network"]

pytestmark = pytest.mark.slow


def test_convert_then_load_from_cache_offline(tmp_path: Path, no_network: list[str]) -> None:
    pytest.importorskip("transformers")
    try:
        source = find_gguf()
    except ModelError as exc:
        pytest.skip(str(exc))
    import torch

    first = load_base_model(tmp_path, source=source)
    assert first.timings["convert_s"] > 0
    assert cache_is_complete(first.cache_dir, source)
    assert (first.cache_dir / "model.safetensors").stat().st_size > 100_000_000

    started = time.perf_counter()
    second = load_base_model(tmp_path, source=source)
    wall = time.perf_counter() - started
    assert second.timings["convert_s"] == 0.0
    assert wall <= 10.0, f"loading from the cache took {wall:.1f} s (budget 10 s)"

    # the cached weights are exactly the converted ones
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    tok = second.tokenizer
    messages = [{"role": "user", "content": "Say hello."}]
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)  # fmt: skip
    with torch.inference_mode():
        out = second.model.generate(**enc, max_new_tokens=8, do_sample=False)
    new_tokens = out[0][enc["input_ids"].shape[1] :]
    assert 0 < len(new_tokens) <= 8
    assert tok.decode(new_tokens, skip_special_tokens=True).strip()
    assert no_network == []
