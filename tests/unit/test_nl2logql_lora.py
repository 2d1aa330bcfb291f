"""LoRA training on a tiny random model: masking, data order, checkpoints, exact resumption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")
from logpipe.models.nl2logql.checkpoint import latest_checkpoint, load_checkpoint
from logpipe.models.nl2logql.examples import TrainingExample
from logpipe.models.nl2logql.train import (
    IGNORE,
    TrainConfig,
    batch_indices,
    collate,
    encode,
    export_adapter,
    reply_loss,
    train,
)
from safetensors.torch import load_file

from logpipe.errors import ModelError
from tests.tinylm import tiny_model, tiny_tokenizer


def examples(n: int = 6) -> list[TrainingExample]:
    return [TrainingExample((("system", "LogQL."), ("user", f"count app{i}")),
                            f'count_over_time({{app="a{i}"}}[5m])', "synth", "x")
            for i in range(n)]  # fmt: skip


CFG = TrainConfig(steps=3, batch_size=2, lr=1e-2, warmup_steps=1, rank=4, alpha=8,
                  dropout=0.1, max_length=200, checkpoint_every=1)  # fmt: skip


def test_only_the_reply_and_its_end_token_are_learned() -> None:
    tok = tiny_tokenizer()
    encoded, dropped = encode(examples(2), tok, 200)
    assert dropped == 0
    batch = collate(encoded, tok.pad_token_id or 0)
    first = encoded[0]
    labels = batch["labels"][0]
    assert (labels[: first.reply_start] == IGNORE).all()
    reply = str(tok.decode([int(t) for t in labels[first.reply_start : len(first.ids)]]))
    assert reply.replace(" ", "").startswith('count_over_time({app="a0"}[5m])')
    assert int(labels[len(first.ids) - 1]) == tok.eos_token_id
    assert (batch["attention_mask"].sum(dim=1) == torch.tensor([len(e.ids) for e in encoded])).all()
    too_long, dropped = encode(examples(3), tok, 30)
    assert too_long == [] and dropped == 3


def test_every_epoch_is_a_seeded_permutation() -> None:
    seen = [i for step in range(5) for i in batch_indices(10, 2, seed=3, step=step)]
    assert sorted(seen) == list(range(10))
    assert batch_indices(10, 2, 3, 7) == batch_indices(10, 2, 3, 7)
    assert [batch_indices(10, 2, 3, s) for s in range(5)] != [
        batch_indices(10, 2, 4, s) for s in range(5)]  # fmt: skip


def test_training_writes_checkpoints_adapter_and_report(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    report = train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path, device="cpu",
                   data_counts={"synthetic": 6})  # fmt: skip
    assert report.steps == 3 and len(report.losses) == 3
    assert all(torch.isfinite(torch.tensor(report.losses)))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest.json", "step-1", "step-2", "step-3"]  # fmt: skip
    adapter = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 4
    summary = json.loads((tmp_path / "train_report.json").read_text())
    assert summary["config"]["rank"] == 4 and summary["data"] == {"synthetic": 6}
    assert summary["device"].startswith("cpu")
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))  # no pickle


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    straight = train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path / "a", device="cpu")
    first = train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path / "b", device="cpu",
                  stop_after=2)  # fmt: skip
    assert len(first.losses) == 2 and not (tmp_path / "b" / "adapter").exists()
    ckpt = latest_checkpoint(tmp_path / "b")
    assert ckpt is not None and load_checkpoint(ckpt).step == 2
    # a fresh model: everything that matters comes back from the checkpoint
    second = train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path / "b", device="cpu")
    assert second.resumed_from == 2 and second.losses == straight.losses
    a = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_with_another_config_is_refused(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path, device="cpu", stop_after=1)
    other = TrainConfig(**{**CFG.__dict__, "lr": 5e-3})
    with pytest.raises(ModelError, match="another config"):
        train(tiny_model(len(tok)), tok, examples(), other, tmp_path, device="cpu")


def test_reply_loss_equals_the_models_own_loss() -> None:
    tok = tiny_tokenizer()
    model = tiny_model(len(tok))
    encoded, _ = encode(examples(3), tok, 200)
    batch = collate(encoded, tok.pad_token_id or 0)
    with torch.no_grad():
        ours = reply_loss(model, batch)
        theirs = model(**batch).loss
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_micro_batches_give_the_gradient_of_the_whole_batch(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    whole = TrainConfig(**{**CFG.__dict__, "steps": 1, "batch_size": 4, "micro_batch_size": 4,
                           "dropout": 0.0, "gradient_checkpointing": False})  # fmt: skip
    split = TrainConfig(**{**whole.__dict__, "micro_batch_size": 1})
    a = train(tiny_model(len(tok)), tok, examples(), whole, tmp_path / "a", device="cpu")
    b = train(tiny_model(len(tok)), tok, examples(), split, tmp_path / "b", device="cpu")
    assert a.losses == pytest.approx(b.losses, rel=1e-4)
    wa = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)


def test_an_exported_checkpoint_is_the_adapter_a_finished_run_writes(tmp_path: Path) -> None:
    from logpipe.models.nl2logql.generate import apply_adapter

    tok = tiny_tokenizer()
    train(tiny_model(len(tok)), tok, examples(), CFG, tmp_path, device="cpu")
    assert export_adapter(tmp_path, tmp_path / "exported") == CFG.steps
    written = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    exported = load_file(str(tmp_path / "exported" / "adapter_model.safetensors"))
    assert written.keys() == exported.keys()
    assert all(torch.equal(written[k], exported[k]) for k in written)
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        a = apply_adapter(tiny_model(len(tok)), tmp_path / "adapter")(ids).logits
        b = apply_adapter(tiny_model(len(tok)), tmp_path / "exported")(ids).logits
    assert torch.allclose(a, b)
    with pytest.raises(ModelError, match="no checkpoint"):
        export_adapter(tmp_path / "empty", tmp_path / "x")
