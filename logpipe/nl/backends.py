"""Who writes the candidate queries for ``logpipe ask``: the language model or retrieval.

* ``model``: SmolLM2-135M-Instruct (:mod:`logpipe.models.nl2logql`) with the fine-tuned
  LoRA adapter merged in when one is found, through the schema-aware prompt;
* ``retrieval``: the nearest solved examples (BM25 over their questions, label values
  moved to the ones the question names, the question's time window put into every range),
  no model at all: fast, needs no weights, and what the model must beat.

``auto`` (the default) is ``model`` when a fine-tuned adapter is found and ``retrieval``
otherwise: the untuned base model writes valid LogQL for a small share of questions (see
the model card), so it runs only when asked for by name, and the answer says so. Either way
every candidate is parsed, validated and repaired by :func:`logpipe.nl.answer.answer`
before anything runs.

Where an adapter is looked for: ``--adapter DIR``, else ``$LOGPIPE_NL2LOGQL_ADAPTER`` (``none``:
no adapter), else ``adapter/`` beside the model package (the committed one, see its model
card).
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logpipe.errors import ModelError, UsageError
from logpipe.logql import ast, parse_query
from logpipe.logql.units import parse_duration
from logpipe.nl.answer import Generator
from logpipe.nl.baseline import RetrievalBaseline
from logpipe.nl.data import Pair
from logpipe.nl.normalise import canonical
from logpipe.nl.prompt import Prompt
from logpipe.nl.repair import question_range, without_time_span
from logpipe.nl.tree import line_filters, walk

__all__ = [
    "ADAPTER_ENV",
    "BACKENDS",
    "BackendChoice",
    "ModelCache",
    "RetrievalGenerator",
    "choose_backend",
    "find_adapter",
    "template_rank",
    "with_range",
]

ADAPTER_ENV = "LOGPIPE_NL2LOGQL_ADAPTER"
BACKENDS = ("auto", "model", "retrieval")


def _packaged_adapter() -> Path:
    import logpipe.models.nl2logql as package  # noqa: PLC0415 - light: no torch at import

    return Path(package.__file__).parent / "adapter"


def find_adapter(
    explicit: Path | None = None,
    env: Mapping[str, str] | None = None,
    packaged: Path | None = None,
) -> Path | None:
    """The adapter to use: ``explicit`` (which must hold one), else the environment's, else
    the packaged one when it exists; None when there is none, or when the environment says
    ``none`` (retrieval without loading a model, e.g. on a machine too small for it)."""
    if explicit is not None:
        if not (explicit / "adapter_config.json").is_file():
            raise UsageError(f"--adapter {explicit}: no adapter_config.json there; train one "
                             "with make train-nl2logql")  # fmt: skip
        return explicit
    env = os.environ if env is None else env
    if env.get(ADAPTER_ENV, "").strip().lower() == "none":
        return None
    if env.get(ADAPTER_ENV):
        path = Path(env[ADAPTER_ENV])
        if not (path / "adapter_config.json").is_file():
            raise UsageError(f"${ADAPTER_ENV}={path}: no adapter_config.json there")
        return path
    packaged = _packaged_adapter() if packaged is None else packaged
    return packaged if (packaged / "adapter_config.json").is_file() else None


@dataclass(frozen=True)
class BackendChoice:
    """The backend that runs (``model`` or ``retrieval``), the adapter for the model, and a
    note saying why, for the user."""

    name: str
    adapter: Path | None
    note: str


def choose_backend(requested: str, adapter: Path | None) -> BackendChoice:
    """Resolve ``auto``; see the module docstring."""
    if requested not in BACKENDS:
        raise UsageError(f"backend {requested!r}: choose one of {', '.join(BACKENDS)}")
    if requested == "retrieval":
        return BackendChoice("retrieval", None, "retrieval of the nearest examples, as asked")
    if adapter is not None:
        return BackendChoice("model", adapter, f"SmolLM2-135M with the adapter {adapter}")
    if requested == "model":
        return BackendChoice("model", None, "the untuned SmolLM2-135M base model (no fine-tuned "
                                            "adapter found): expect few valid answers")  # fmt: skip
    return BackendChoice("retrieval", None, "retrieval of the nearest examples (no fine-tuned "
                                            "adapter found; --backend model runs the untuned "
                                            "base model)")  # fmt: skip


# ------------------------------------------------------------------ retrieval
def with_range(expr: Any, range_ns: int) -> Any:
    """``expr`` with every ``[range]`` set to ``range_ns``."""
    if isinstance(expr, tuple):
        return tuple(with_range(item, range_ns) for item in expr)
    if not dataclasses.is_dataclass(expr) or isinstance(expr, type):
        return expr
    changes = {f.name: with_range(getattr(expr, f.name), range_ns)
               for f in dataclasses.fields(expr)}  # fmt: skip
    if isinstance(expr, ast.LogRange):
        changes["range_nanos"] = range_ns
    return dataclasses.replace(expr, **changes)


def template_rank(pair: Pair, templates: Sequence[str]) -> int:
    """The position of the first template that a ``|=`` filter of ``pair`` quotes
    (``len(templates)`` when none does)."""
    needles = [v for f in line_filters(pair.expr) if f.op == "|="
               for v in f.values if isinstance(v, str) and v]  # fmt: skip
    for i, template in enumerate(templates):
        if any(needle in template for needle in needles):
            return i
    return len(templates)


_PER = re.compile(r"\b(?:per|by|for each|each|broken down by)\s+([a-z_][a-z0-9_ ]*)", re.IGNORECASE)
_LABEL_WORDS = {"host": ("hostname", "host"), "level": ("log_level", "level"),
                "severity": ("log_level", "level"), "file": ("log_file_type",),
                "component": ("component",)}  # fmt: skip


def wanted_grouping(question: str, labels: Sequence[str]) -> set[str]:
    """The labels a question breaks its answer down by ("per host", "by log level")."""
    wanted: set[str] = set()
    for m in _PER.finditer(question):
        words = m.group(1).lower().split()
        for size in (2, 1):
            phrase = "_".join(words[:size])
            names = (phrase, *_LABEL_WORDS.get(phrase, ()))
            found = [n for n in names if n in labels]
            if found:
                wanted.add(found[0])
                break
    return wanted


def grouping_of(pair: Pair) -> set[str]:
    """The labels a query groups by (``by``, never ``without``)."""
    return {label for node in walk(pair.expr) if isinstance(node, ast.Grouping)
            and not node.without for label in node.labels}  # fmt: skip


class RetrievalGenerator:
    """Candidates from the nearest examples: :class:`~logpipe.nl.baseline.RetrievalBaseline`
    with the labels substituted, and the window the question names (``in the last 6
    hours``) put into every range. Reads the question and templates from the prompt.

    Two steps, because a question says both which lines and what to compute: examples
    that quote the template the prompt ranked most similar to the question come first
    (the lines), and among those the nearest by their question's words (the shape);
    examples quoting no shown template keep their nearest-question order after them. A
    question that breaks its answer down ("per host") prefers examples grouped that way."""

    def __init__(self, baseline: RetrievalBaseline, labels: Mapping[str, Sequence[str]]):
        self.baseline = baseline
        self.labels = labels

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        # ranked without the window: "in the last 2 hours" says nothing about which lines
        asked = without_time_span(prompt.question) or prompt.question
        templates = prompt.templates
        wanted = wanted_grouping(asked, list(self.labels))

        def key(pair: Pair) -> tuple[int, int]:
            return template_rank(pair, templates), int(bool(wanted) and grouping_of(pair) != wanted)

        queries = self.baseline.predict_many(asked, self.labels, n, key=key)
        span = question_range(prompt.question)
        if span is None:
            return queries
        range_ns = parse_duration(span)
        from logpipe.logql import format_query  # noqa: PLC0415

        return [format_query(canonical(with_range(parse_query(q), range_ns))) for q in queries]


# ------------------------------------------------------------------ model
class ModelCache:
    """Loads the model generator once per adapter, on first use (a server keeps it; loading
    takes a few seconds from the converted cache), thread-safe."""

    def __init__(self, loader: Callable[[Path | None], Generator] | None = None) -> None:
        self._loader = loader or load_model_generator
        self._loaded: dict[Path | None, Generator] = {}
        self._lock = threading.Lock()

    def get(self, adapter: Path | None) -> Generator:
        with self._lock:
            if adapter not in self._loaded:
                self._loaded[adapter] = self._loader(adapter)
            return self._loaded[adapter]


def load_model_generator(adapter: Path | None) -> Generator:
    """SmolLM2 from the converted cache, the adapter merged in when given (ModelError with
    what to do when the model package or its dependencies are missing)."""
    try:
        from logpipe.models.nl2logql.generate import ModelGenerator, apply_adapter  # noqa: PLC0415
        from logpipe.models.nl2logql.loader import load_base_model  # noqa: PLC0415
    except ImportError as exc:
        raise ModelError(
            f"the model backend needs the nl extra ({exc.name} is missing): "
            "pip install 'logpipe[nl]', or use --backend retrieval"
        ) from None
    loaded = load_base_model()
    model = apply_adapter(loaded.model, adapter) if adapter is not None else loaded.model
    generator: Generator = ModelGenerator(model, loaded.tokenizer)
    return generator
