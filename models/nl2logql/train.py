"""LoRA fine-tuning of the base model on NL2LogQL training examples.

``python -m logpipe.models.nl2logql.train --out runs/nl2logql`` trains SmolLM2-135M-Instruct
(from the safetensors cache, :mod:`~logpipe.models.nl2logql.loader`) with LoRA adapters
(peft) on the prompts of :mod:`~logpipe.models.nl2logql.examples`; the loss covers the
reply (the query and its end token) only. On a GPU when ``torch.cuda.is_available()``
(bf16 autocast), otherwise on the CPU, with the same code path.

Reproducible: seeds for torch and the data order; the batch of step ``s`` is a pure function
of (seed, s), so a resumed run (``--resume``, the default when a checkpoint exists) sees the
same batches it would have seen, and its RNG state comes back from the checkpoint. CPU runs
repeat bit for bit; GPU kernels may not.

Outputs under ``--out``: ``checkpoints/step-N/`` every ``--checkpoint-every`` steps
(:mod:`~logpipe.models.nl2logql.checkpoint`), ``adapter/`` (peft's
``adapter_model.safetensors`` and ``adapter_config.json``) and ``train_report.json`` (data,
steps, losses, time, device) at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from logpipe.models.nl2logql.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from logpipe.models.nl2logql.examples import TrainingExample

from logpipe.datadir import shared_data_dir
from logpipe.errors import LogpipeError, ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "Encoded",
    "TrainConfig",
    "TrainReport",
    "batch_indices",
    "encode",
    "export_adapter",
    "main",
    "reply_loss",
    "train",
]

IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; all of them are recorded with every checkpoint."""

    steps: int = 0  # 0: as many as ``epochs`` takes
    epochs: float = 1.0
    batch_size: int = 8
    micro_batch_size: int = 2  # examples per forward pass; gradients accumulate to batch_size
    gradient_checkpointing: bool = True  # recompute activations: ~5x less memory, ~1/3 slower
    lr: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    max_length: int = 1024
    seed: int = 0
    checkpoint_every: int = 50
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj")  # fmt: skip

    def total_steps(self, n_examples: int) -> int:
        if self.steps:
            return self.steps
        return max(1, math.ceil(self.epochs * n_examples / self.batch_size))


@dataclass(frozen=True)
class Encoded:
    """Token ids of prompt + reply, and where the reply starts."""

    ids: tuple[int, ...]
    reply_start: int


def encode(
    examples: Sequence[TrainingExample], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[list[Encoded], int]:
    """Chat-template the prompts, append the reply and the end token; examples longer than
    ``max_length`` are dropped (their count is returned), never cut: a cut query teaches
    the model to stop mid-query."""
    encoded: list[Encoded] = []
    dropped = 0
    eos = tokenizer.eos_token_id
    if not isinstance(eos, int):
        raise ModelError("the tokenizer has no end token")
    for example in examples:
        prompt = tokenizer.apply_chat_template(example.chat(), add_generation_prompt=True,
                                               tokenize=True, return_dict=False)  # fmt: skip
        reply = tokenizer.encode(example.target, add_special_tokens=False)
        ids = [*prompt, *reply, eos]
        if len(ids) > max_length:
            dropped += 1
            continue
        encoded.append(Encoded(tuple(int(i) for i in ids), len(prompt)))
    return encoded, dropped


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The examples of batch ``step``: a new seeded permutation of all ``n`` every epoch,
    read in order, ``batch_size`` at a time (a pure function, for exact resumption)."""
    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, at = divmod(position, n)
        order = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        out.append(order[at])
    return out


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels that are the reply only."""
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        seq = torch.tensor(e.ids, dtype=torch.long)
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
        labels[row, e.reply_start : len(seq)] = seq[e.reply_start :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def reply_loss(model: Any, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Mean cross-entropy of the reply tokens, with the output layer applied to the reply
    positions only.

    Why not ``model(**batch).loss``: that projects every position onto the 49,152-word
    vocabulary, prompt included, although only the ~50 reply tokens of a ~600-token
    example are learned; the projection and its gradient then dominate memory (gigabytes
    per batch) and take about a fifth of the compute. The value is the same.
    """
    labels = batch["labels"]
    decoder = model.get_decoder()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    hidden = hidden.last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction=reduction)


def _lr(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero at ``total``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * max(0.0, (total - step) / max(1, total - cfg.warmup_steps))


@dataclass
class TrainReport:
    steps: int
    examples: int
    dropped_too_long: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    resumed_from: int = 0
    adapter_dir: str = ""


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[TrainingExample],
    cfg: TrainConfig,
    out_dir: Path,
    *,
    device: str = "auto",
    resume: bool = True,
    log: Callable[[str], None] = lambda _: None,
    data_counts: dict[str, int] | None = None,
    stop_after: int | None = None,
) -> TrainReport:
    """Wrap ``model`` with LoRA adapters and train them; see the module docstring.

    ``stop_after`` ends this call after that many steps (checkpointing there), for
    time-boxed sessions: the next call resumes. The adapter and report are written only
    when the run is complete."""
    from peft import (  # noqa: PLC0415 - peft loads only when training
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )

    torch.manual_seed(cfg.seed)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))  # fmt: skip
    encoded, dropped = encode(examples, tokenizer, cfg.max_length)
    if not encoded:
        raise ModelError(f"no training example fits in {cfg.max_length} tokens")
    pad = tokenizer.pad_token_id if isinstance(tokenizer.pad_token_id, int) else 0
    lora = _lora_config(cfg)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False  # a KV cache is for generation; it cannot be kept here
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
    peft_model = get_peft_model(model, lora)
    peft_model.to(dev)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.total_steps(len(encoded))
    config = dataclasses.asdict(cfg)
    config["target_modules"] = list(cfg.target_modules)
    report = TrainReport(total, len(encoded), dropped, device=_device_name(dev))
    start = 0
    found = latest_checkpoint(out_dir) if resume else None
    if found is not None:
        ckpt = load_checkpoint(found)
        if ckpt.state.get("config") != config:
            raise ModelError(f"the checkpoint in {found} was made with another config; "
                             "use another --out or --no-resume")  # fmt: skip
        set_peft_model_state_dict(peft_model, {k: v.to(dev) for k, v in ckpt.adapter.items()})
        optimizer.load_state_dict(ckpt.optimizer)
        torch.set_rng_state(ckpt.rng["cpu"])
        if dev.type == "cuda" and "cuda" in ckpt.rng:
            torch.cuda.set_rng_state(ckpt.rng["cuda"], dev)
        start = report.resumed_from = ckpt.step
        report.losses = list(ckpt.state.get("losses", []))
        log(f"resumed from {found} (step {start})")

    def checkpoint(step: int) -> None:
        adapter = get_peft_model_state_dict(peft_model)
        save_checkpoint(out_dir, Checkpoint(step, adapter, optimizer.state_dict(),
                                            {"config": config, "losses": report.losses,
                                             "total_steps": total},
                                            _rng_state(dev)))  # fmt: skip

    peft_model.train()
    started = time.perf_counter()
    end = total if stop_after is None else min(total, start + stop_after)
    for step in range(start, end):
        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, step, total)
        chosen = [encoded[i] for i in batch_indices(len(encoded), cfg.batch_size, cfg.seed, step)]
        tokens = sum(len(e.ids) - e.reply_start for e in chosen)  # reply tokens (incl. end)
        summed = 0.0
        for at in range(0, len(chosen), max(1, cfg.micro_batch_size)):
            micro = collate(chosen[at : at + max(1, cfg.micro_batch_size)], pad)
            micro = {k: v.to(dev) for k, v in micro.items()}
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                enabled=dev.type == "cuda"):  # fmt: skip
                loss = reply_loss(peft_model.get_base_model(), micro, reduction="sum")
            (loss / tokens).backward()  # type: ignore[no-untyped-call]
            summed += float(loss.detach().cpu())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        report.losses.append(summed / tokens)
        log(f"step {step + 1}/{total} loss {report.losses[-1]:.4f} "
            f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 in (total, end):
            checkpoint(step + 1)
    report.seconds = time.perf_counter() - started
    if end < total:
        return report
    adapter_dir = out_dir / "adapter"
    peft_model.save_pretrained(str(adapter_dir))
    report.adapter_dir = str(adapter_dir)
    summary: dict[str, Any] = {**dataclasses.asdict(report), "config": config,
                               "data": data_counts or {}}  # fmt: skip
    (out_dir / "train_report.json").write_text(json.dumps(summary, indent=1), "utf-8")
    return report


def _lora_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig  # noqa: PLC0415 - peft loads only when training

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")  # fmt: skip


def export_adapter(run_dir: Path, dest: Path) -> int:
    """Write the latest checkpoint of ``run_dir`` as a peft adapter directory at ``dest``
    (what :func:`~logpipe.models.nl2logql.generate.apply_adapter` loads); its step.

    Why: a CPU run is often stopped before its last step (``--stop-after``), and a stopped
    run's weights are worth scoring; the checkpoint already holds them, and its recorded
    config says how the adapter was shaped, so the base model is not needed here."""
    from safetensors.torch import save_file  # noqa: PLC0415

    found = latest_checkpoint(run_dir)
    if found is None:
        raise ModelError(f"{run_dir} holds no checkpoint to export")
    ckpt = load_checkpoint(found)
    config = dict(ckpt.state.get("config", {}))
    config["target_modules"] = tuple(config.get("target_modules", ()))
    try:
        cfg = TrainConfig(**config)
    except TypeError as exc:
        raise ModelError(f"the checkpoint {found} records an unknown config: {exc}") from None
    dest.mkdir(parents=True, exist_ok=True)
    _lora_config(cfg).save_pretrained(str(dest))
    save_file({k: v.contiguous() for k, v in ckpt.adapter.items()},
              str(dest / "adapter_model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    return int(ckpt.step)


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _default_data_dir() -> Path:
    """``$LOGPIPE_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    return shared_data_dir()


def main(argv: list[str] | None = None) -> int:
    """The command line: build the examples, load the base model, train."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m logpipe.models.nl2logql.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="shared data directory (default ../shared/data)")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=None, help="model cache root")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="optimizer steps (default: --epochs worth)")  # fmt: skip
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--micro-batch-size", type=int, default=defaults.micro_batch_size,
                        help="examples per forward pass; gradients accumulate")  # fmt: skip
    parser.add_argument("--no-gradient-checkpointing", action="store_true",
                        help="keep activations (faster, several GB more memory)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--rank", type=int, default=defaults.rank)
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--synthetic", type=int, default=2000,
                        help="synthetic pairs to add (default 2000; 0: none)")  # fmt: skip
    parser.add_argument("--shots", type=int, default=3, help="few-shot examples per prompt")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop this run after N steps (resume later)")  # fmt: skip
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="write the latest checkpoint of --out as an adapter directory "
                             "at DIR and exit (score a stopped run)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.export is not None:
        try:
            step = export_adapter(args.out, args.export)
        except LogpipeError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return exc.exit_code
        sys.stdout.write(json.dumps({"exported_step": step, "adapter": str(args.export)}) + "\n")
        return 0
    cfg = TrainConfig(steps=args.steps, epochs=args.epochs, batch_size=args.batch_size,
                      micro_batch_size=args.micro_batch_size,
                      gradient_checkpointing=not args.no_gradient_checkpointing,
                      lr=args.lr, rank=args.rank, alpha=2 * args.rank,
                      max_length=args.max_length, seed=args.seed,
                      checkpoint_every=args.checkpoint_every)  # fmt: skip
    from logpipe.models.nl2logql.examples import build_training_data  # noqa: PLC0415
    from logpipe.models.nl2logql.loader import load_base_model  # noqa: PLC0415

    data_dir = args.data_dir or _default_data_dir()
    try:
        data = build_training_data(data_dir, seed=args.seed, synthetic=args.synthetic,
                                   shots=args.shots)  # fmt: skip
        base = load_base_model(args.cache_dir)
        args.out.mkdir(parents=True, exist_ok=True)
        report = train(base.model, base.tokenizer, data.examples, cfg, args.out,
                       device=args.device, resume=not args.no_resume,
                       log=_log,
                       data_counts=data.counts, stop_after=args.stop_after)  # fmt: skip
    except LogpipeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    summary = {"steps": report.steps, "seconds": round(report.seconds, 1),
               "final_loss": report.losses[-1] if report.losses else None,
               "adapter": report.adapter_dir, "device": report.device}  # fmt: skip
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
