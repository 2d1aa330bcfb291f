"""The real base model: GGUF -> safetensors cache -> load -> generate, and two LoRA training
steps on real training examples, on CPU, offline.

Slow (the conversion dequantizes the GGUF: ~15-20 s here, and writes ~540 MB into a
temporary cache; a training step takes tens of seconds), so opt-in with ``-m slow``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from logpipe.models.nl2logql.loader import (
    GgufSource,
    cache_is_complete,
    find_gguf,
    load_base_model,
)

from logpipe.errors import ModelError
from tests.netguard import no_network

__all__ = ["no_network"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source() -> GgufSource:
    pytest.importorskip("transformers")
    try:
        return find_gguf()
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def test_convert_then_load_from_cache_offline(
    source: GgufSource, cache_root: Path, no_network: list[str]
) -> None:
    import torch

    first = load_base_model(cache_root, source=source)
    assert first.timings["convert_s"] > 0
    assert cache_is_complete(first.cache_dir, source)
    assert (first.cache_dir / "model.safetensors").stat().st_size > 100_000_000

    started = time.perf_counter()
    second = load_base_model(cache_root, source=source)
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


@pytest.mark.data
def test_two_lora_steps_on_real_examples(
    source: GgufSource, cache_root: Path, shared_data: Path, tmp_path: Path
) -> None:
    import torch
    from logpipe.models.nl2logql.examples import build_training_data
    from logpipe.models.nl2logql.train import TrainConfig, train
    from safetensors.torch import load_file

    data = build_training_data(shared_data, synthetic=20)
    base = load_base_model(cache_root, source=source)
    cfg = TrainConfig(steps=2, batch_size=2, micro_batch_size=1, checkpoint_every=1)
    report = train(base.model, base.tokenizer, data.examples[:8], cfg, tmp_path, device="cpu")
    assert len(report.losses) == 2 and all(0 < x < 20 for x in report.losses)
    adapter = tmp_path / "adapter" / "adapter_model.safetensors"
    assert adapter.stat().st_size <= 50_000_000  # small enough to commit
    weights = load_file(str(adapter))
    assert weights and all(torch.isfinite(w).all() for w in weights.values())
