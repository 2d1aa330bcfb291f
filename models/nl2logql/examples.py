"""Training examples: prompts built exactly as at inference, with the gold query as target.

Only the training side of the split is ever read here: :func:`build_training_data` takes
``split.train`` from :func:`~logpipe.nl.data.load_split` and synthetic pairs that
:func:`~logpipe.nl.synth.dedupe` has cleared of everything held out (questions, queries and
their question groups). The held-out pairs are used for one thing only, that clearing.

Each example's prompt comes from :class:`~logpipe.nl.prompt.PromptBuilder` over the same
schema the evaluation store exposes (:func:`~logpipe.nl.evalstore.loghub_schema`), with
few-shot examples drawn from the training pool *outside the example's own question group*:
at evaluation time a held-out question never sees a variant of itself, so training must
not teach the model to copy one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from logpipe.nl.data import DATASET_RELPATH, Pair, group_keys, load_split
from logpipe.nl.evalstore import deployments, loghub_schema
from logpipe.nl.loghub import SYSTEMS, SystemLogs, load_system
from logpipe.nl.prompt import Example, PromptBuilder, Schema
from logpipe.nl.synth import dedupe, generate

__all__ = ["EVAL_FAMILIES", "TrainingData", "TrainingExample", "build_examples",
           "build_training_data"]  # fmt: skip

EVAL_FAMILIES = ("openssh", "openstack", "hdfs")


@dataclass(frozen=True)
class TrainingExample:
    """Chat messages (system, user) and the reply to learn."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    target: str
    source: str
    family: str

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class TrainingData:
    examples: list[TrainingExample]
    counts: dict[str, int] = field(default_factory=dict)


def build_examples(
    pairs: Sequence[Pair],
    schemas: Mapping[str, Schema],
    *,
    shots: int = 3,
    max_tokens: int = 600,
) -> list[TrainingExample]:
    """One example per pair; ``schemas[family]`` is the schema its prompt sees."""
    keys = group_keys(pairs)
    pool = [Example(p.question, p.query, k) for p, k in zip(pairs, keys, strict=True)]
    builder = PromptBuilder(pool, shots=shots, max_tokens=max_tokens)
    out = []
    for pair, key in zip(pairs, keys, strict=True):
        prompt = builder.build(pair.question, schemas[pair.family], exclude_group=key)
        messages = tuple((m["role"], m["content"]) for m in prompt.messages)
        out.append(TrainingExample(messages, pair.query, pair.source, pair.family))
    return out


def build_training_data(
    data_dir: str | Path,
    *,
    seed: int = 0,
    synthetic: int | None = 2000,
    apps_per_template: int = 1,
    shots: int = 3,
    max_tokens: int = 600,
) -> TrainingData:
    """The training pairs of the shared dataset plus up to ``synthetic`` generated pairs
    (None: all; 0: none), as prompt/target examples, in a seeded order."""
    data_dir = Path(data_dir)
    split, rejected = load_split(data_dir / DATASET_RELPATH)
    systems: dict[str, SystemLogs] = {s.family: load_system(data_dir, s.system)
                                      for s in SYSTEMS.values()}  # fmt: skip
    pairs: list[Pair] = list(split.train)
    generated: list[Pair] = []
    if synthetic != 0:
        generated = dedupe(generate(list(systems.values()), seed=seed,
                                    apps_per_template=apps_per_template), split)  # fmt: skip
        rng = random.Random(seed)
        if synthetic is not None and len(generated) > synthetic:
            generated = rng.sample(generated, synthetic)
    pairs += generated
    label_sets = deployments([p.expr for p in pairs], systems)
    main = {f: label_sets[f] for f in EVAL_FAMILIES if f in label_sets}
    schemas: dict[str, Schema] = {}
    for family in {p.family for p in pairs}:
        sets = dict(main)
        if family not in sets and family in label_sets:
            sets[family] = label_sets[family]
        schemas[family] = loghub_schema(systems, sets)
    examples = build_examples(pairs, schemas, shots=shots, max_tokens=max_tokens)
    random.Random(seed).shuffle(examples)
    counts = Counter(e.source for e in examples)
    return TrainingData(examples, {"real": counts["nl2logql"], "synthetic": counts["synth"],
                                   "heldout_excluded": len(split.heldout),
                                   "rejected_by_parser": len(rejected)})  # fmt: skip
