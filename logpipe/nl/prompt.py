"""The schema-aware prompt: the question, what the store holds, and similar solved questions.

Why each part: a 135M-parameter model cannot know which labels and values a store has, nor
what its log lines say, nor LogQL's finer syntax; so the prompt tells it, compactly:

* **labels** the store has, each with the values most relevant to the question (values the
  question names first, then values sharing words with it, then the rest up to a cap);
* **log templates** most similar to the question (BM25), so it can quote a real phrase in a
  line filter rather than invent one;
* **examples**: the training questions nearest to this one (BM25), with their queries, as
  few-shot demonstrations (distinct queries only);
* the **time range** of the data, when given.

Everything is ranked deterministically and fitted into a token budget by dropping the least
relevant parts first (examples, then templates, then values), so the same question and
schema always give the same prompt. Training builds its prompts with this same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from logpipe.nl.bm25 import BM25, tokenize
from logpipe.store import Store

__all__ = [
    "SYSTEM_PROMPT",
    "Example",
    "Prompt",
    "PromptBuilder",
    "Schema",
    "approx_tokens",
    "schema_from_store",
]

SYSTEM_PROMPT = (
    "You translate questions about logs into one LogQL query. Use only the labels and "
    "values listed. Reply with the query alone."
)
_SKIP_LABELS = frozenset({"__error__", "__error_details__"})


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 3.5 characters a token for this kind of text)."""
    return max(1, round(len(text) / 3.5))


@dataclass(frozen=True)
class Example:
    """A solved question; ``group`` says which examples must not be shown together with a
    question of the same group (training leaves a question's own variants out)."""

    question: str
    query: str
    group: str = ""


@dataclass(frozen=True)
class Schema:
    """What the store knows: label names with their values, the label sets of its streams
    (optional: lets the prompt show only the labels of the streams a question names), log
    templates, the time range."""

    labels: Mapping[str, Sequence[str]]
    templates: Sequence[str] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    streams: Sequence[Mapping[str, str]] = ()

    def focus(self, question: str) -> dict[str, list[str]]:
        """Label values for ``question``: when it names a label value (``openssh-us-east``)
        and streams are known, the other labels' values come from the streams that carry
        a named value; the named labels keep all their values."""
        lowered = question.lower()
        named = {(n, v) for n, vs in self.labels.items() for v in vs
                 if len(v) >= 4 and v.lower() in lowered}  # fmt: skip
        if not named or not self.streams:
            return {n: list(v) for n, v in self.labels.items()}
        chosen = [s for s in self.streams if any(s.get(n) == v for n, v in named)]
        values: dict[str, set[str]] = {}
        for stream in chosen:
            for n, v in stream.items():
                values.setdefault(n, set()).add(v)
        named_labels = {n for n, _ in named}
        return {n: list(vs) if n in named_labels else sorted(values.get(n, ()))
                for n, vs in self.labels.items() if n in named_labels or values.get(n)}  # fmt: skip


def schema_from_store(
    store: Store,
    tenant: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    templates: Sequence[str] = (),
) -> Schema:
    """The label names and values of ``tenant``'s streams with data in the range."""
    streams = store.streams(tenant, (), start_ns, end_ns)
    labels: dict[str, set[str]] = {}
    for stream in streams:
        for name, value in stream.items():
            if name not in _SKIP_LABELS:
                labels.setdefault(name, set()).add(value)
    return Schema({n: sorted(v) for n, v in sorted(labels.items())}, tuple(templates),
                  start_ns, end_ns, streams)  # fmt: skip


@dataclass
class Prompt:
    """Chat messages for the model, and what went into them (for ``--explain`` and tests)."""

    messages: list[dict[str, str]]
    examples: list[Example] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    labels: dict[str, list[str]] = field(default_factory=dict)
    tokens: int = 0
    question: str = ""  # as asked (whitespace folded): what a retrieval generator reads

    @property
    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rank_values(question: str, values: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` values: those the question names (longest first), then those sharing
    words with it (best first), then the rest in order."""
    lowered = question.lower()
    named = sorted((v for v in values if v and v.lower() in lowered), key=lambda v: (-len(v), v))
    rest = [v for v in values if v not in named]
    index = BM25([tokenize(v) for v in rest])
    similar = [rest[i] for i, _ in index.top(tokenize(question), len(rest))]
    tail = [v for v in rest if v not in similar]
    return (named + similar + tail)[:limit]


class PromptBuilder:
    """Builds prompts over a pool of examples; ``count_tokens`` measures the budget."""

    def __init__(
        self,
        examples: Sequence[Example],
        *,
        max_tokens: int = 700,
        shots: int = 3,
        max_values: int = 6,
        max_templates: int = 4,
        count_tokens: Callable[[str], int] = approx_tokens,
    ) -> None:
        self.examples = list(examples)
        self.index = BM25([tokenize(e.question) for e in self.examples])
        self.max_tokens = max_tokens
        self.shots = shots
        self.max_values = max_values
        self.max_templates = max_templates
        self.count_tokens = count_tokens

    def nearest(self, question: str, k: int, exclude_group: str = "") -> list[Example]:
        """The ``k`` nearest examples, one per group (variants of one question teach no more
        than one does), outside ``exclude_group``, never the question itself."""
        chosen: list[Example] = []
        seen: set[str] = set()
        for i, _ in self.index.top(tokenize(question), len(self.examples)):
            example = self.examples[i]
            key = example.group or example.query
            if (exclude_group and example.group == exclude_group) or key in seen:
                continue
            if example.question.strip().lower() == question.strip().lower():
                continue
            chosen.append(example)
            seen.add(key)
            if len(chosen) == k:
                break
        return chosen

    def build(self, question: str, schema: Schema, *, exclude_group: str = "") -> Prompt:
        """The prompt for ``question``, within the token budget."""
        question = " ".join(question.split())
        focused = sorted(schema.focus(question).items())
        labels = {n: rank_values(question, v, self.max_values)
                  for n, v in focused if n not in _SKIP_LABELS}  # fmt: skip
        template_index = BM25([tokenize(t.replace("<*>", " ")) for t in schema.templates])
        templates = [schema.templates[i] for i, _ in
                     template_index.top(tokenize(question), self.max_templates)]  # fmt: skip
        examples = self.nearest(question, self.shots, exclude_group)
        while True:
            prompt = self._render(question, schema, labels, templates, examples)
            if prompt.tokens <= self.max_tokens:
                return prompt
            if examples:
                examples = examples[:-1]
            elif templates:
                templates = templates[:-1]
            elif any(len(v) > 1 for v in labels.values()):
                longest = max(labels, key=lambda n: (len(labels[n]), n))
                labels[longest] = labels[longest][:-1]
            else:
                return prompt  # the question and one value per label: as small as it gets

    def _render(
        self,
        question: str,
        schema: Schema,
        labels: dict[str, list[str]],
        templates: list[str],
        examples: list[Example],
    ) -> Prompt:
        lines = ["Labels:"]
        lines += [f"{name}: {', '.join(values)}" for name, values in labels.items()]
        if schema.start_ns is not None and schema.end_ns is not None:
            lines.append(f"Time range: {_iso(schema.start_ns)} to {_iso(schema.end_ns)}")
        if templates:
            lines.append("Log lines look like:")
            lines += [f"- {t}" for t in templates]
        if examples:
            lines.append("Examples:")
            for e in examples:
                lines += [f"Q: {e.question}", f"A: {e.query}"]
        lines += [f"Q: {question}", "A:"]
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": "\n".join(lines)}]  # fmt: skip
        tokens = sum(self.count_tokens(m["content"]) for m in messages)
        return Prompt(messages, list(examples), list(templates),
                      {n: list(v) for n, v in labels.items()}, tokens, question)  # fmt: skip


def examples_from(pairs: Iterable[tuple[str, str, str]]) -> list[Example]:
    """Examples from (question, query, group) triples."""
    return [Example(q, a, g) for q, a, g in pairs]
