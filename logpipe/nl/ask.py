"""``ask``: a question about a store's logs in, a validated LogQL query and its answer out.

One service behind ``logpipe ask --store`` and ``POST /api/v1/ask``:

1. **What the store knows** (per tenant, rebuilt only when the store changes): label names
   and values of its streams (the store's own index), templates mined from a bounded sample
   of its newest lines (:mod:`logpipe.nl.storeschema`, cached), and solved examples: the
   user's own (``--examples``) plus synthetic pairs built over the store's templates and
   labels (:func:`logpipe.nl.synth.generate_for_store`), so a store of any kind of logs has
   examples about its own lines.
2. **A prompt** of those (:class:`~logpipe.nl.prompt.PromptBuilder`: the labels and values,
   the templates and the examples nearest to the question).
3. **Candidates** from the backend (:mod:`logpipe.nl.backends`: the model, or retrieval).
4. **Never trusted**: :func:`logpipe.nl.answer.answer` parses, validates and repairs each
   candidate (a line filter that matches nothing in the window is put on the store's own
   text, :mod:`logpipe.nl.ground`); only valid queries run, through an executor that
   parses them once more; a question with no valid candidate gets "cannot answer" and the
   closest known query.

Times: a log query runs over ``[end - since, end)``, a metric query as an instant query at
``end`` (its ranges say how far back it looks); ``end`` is now unless given.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logpipe.errors import UsageError
from logpipe.logql.results import QueryResult, to_loki_json
from logpipe.nl.answer import Answer, Generator, QueryRunner, answer, engine_executor
from logpipe.nl.backends import BackendChoice, ModelCache, RetrievalGenerator, choose_backend
from logpipe.nl.baseline import RetrievalBaseline
from logpipe.nl.data import Pair
from logpipe.nl.ground import TemplateGrounder, store_probe
from logpipe.nl.prompt import Example, Prompt, PromptBuilder, Schema, schema_from_store
from logpipe.nl.storeschema import (
    StoreTemplates,
    TemplateCache,
    app_label_of,
    store_fingerprint,
    templates_by_app,
)
from logpipe.nl.synth import generate_for_store
from logpipe.store import DEFAULT_TENANT, Store

__all__ = ["MAX_CANDIDATES", "MAX_QUESTION_CHARS", "AskRequest", "AskResult", "Asker"]

MAX_QUESTION_CHARS = 1000
MAX_CANDIDATES = 16
SYNTH_TEMPLATES = 100  # synthetic examples are built over this many templates at most
HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class AskRequest:
    """A question and how to answer it."""

    question: str
    tenant: str = DEFAULT_TENANT
    candidates: int = 4
    dry_run: bool = False
    backend: str = "auto"
    end_ns: int | None = None
    since_ns: int = HOUR_NS
    limit: int = 100

    def check(self) -> None:
        """UsageError (exit 2, HTTP 400) naming what is wrong."""
        if not self.question.strip():
            raise UsageError("question: empty; ask something about the logs")
        if len(self.question) > MAX_QUESTION_CHARS:
            raise UsageError(f"question: {len(self.question)} characters; the limit is "
                             f"{MAX_QUESTION_CHARS}")  # fmt: skip
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise UsageError(f"candidates: {self.candidates}; give 1 to {MAX_CANDIDATES}")
        if self.since_ns <= 0:
            raise UsageError("since: must be a positive duration")
        if self.limit < 1:
            raise UsageError("limit: must be at least 1")


@dataclass
class Knowledge:
    """What the store knows, for one tenant at one state of the store."""

    fingerprint: str
    schema: Schema
    templates: StoreTemplates
    app_label: str | None
    examples: list[Pair]
    builder: PromptBuilder
    baseline: RetrievalBaseline | None


@dataclass
class AskResult:
    """The answer, how it was reached, and by what."""

    request: AskRequest
    answer: Answer
    prompt: Prompt
    backend: BackendChoice
    seconds: float
    executed: bool
    examples: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.answer.status

    @property
    def query(self) -> str | None:
        return self.answer.query

    @property
    def result(self) -> QueryResult | None:
        return self.answer.result

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        """The API's response body (``details``: the prompt's context and every candidate)."""
        body: dict[str, Any] = {
            "question": self.request.question,
            "status": self.answer.status,
            "query": self.answer.query,
            "explanation": self.answer.explanation,
            "backend": self.backend.name,
            "backend_note": self.backend.note,
            "seconds": round(self.seconds, 4),
        }
        if self.answer.closest is not None:
            body["closest_query"] = self.answer.closest
        if self.answer.result is not None:
            body["result"] = to_loki_json(self.answer.result, {})
        if details:
            body["candidates"] = [
                {"raw": c.raw, "text": c.text, "query": c.query, "error": c.error,
                 "repairs": c.repairs, "votes": c.votes if c.query else 0,
                 "executed": c.outcome is not None,
                 "has_data": bool(c.outcome and c.outcome.has_data),
                 "execution_error": c.outcome.error if c.outcome else None}
                for c in self.answer.candidates
            ]  # fmt: skip
            body["context"] = {"labels": self.prompt.labels, "templates": self.prompt.templates,
                               "examples": [{"question": e.question, "query": e.query}
                                            for e in self.prompt.examples],
                               "examples_known": self.examples}  # fmt: skip
            body["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        return body


def _pool(user: Sequence[Pair], synthetic: Sequence[Pair]) -> list[Pair]:
    """The user's examples first, then the synthetic ones, one per question."""
    seen: set[str] = set()
    out: list[Pair] = []
    for pair in (*user, *synthetic):
        key = " ".join(pair.question.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


class Asker:
    """Answers questions over one store (see the module docstring). Thread-safe; what it
    learns about a tenant is kept until the store changes."""

    def __init__(
        self,
        store: Store,
        engine: QueryRunner,
        *,
        examples: Sequence[Pair] = (),
        adapter: Path | None = None,
        templates: TemplateCache | None = None,
        models: ModelCache | None = None,
        retrieval_factory: Callable[[Knowledge], Generator] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.engine = engine
        self.examples = list(examples)
        self.adapter = adapter
        self.templates = templates or TemplateCache()
        self.models = models or ModelCache()
        self._retrieval = retrieval_factory
        self.clock = clock
        self._known: dict[str, Knowledge] = {}
        self._lock = threading.Lock()

    def knowledge(self, tenant: str) -> Knowledge:
        """The tenant's schema, templates, examples and indexes (cached per store state)."""
        fingerprint = store_fingerprint(self.store, tenant)
        with self._lock:
            known = self._known.get(tenant)
            if known is not None and known.fingerprint == fingerprint:
                return known
        mined = self.templates.get(self.store, tenant)
        schema = schema_from_store(self.store, tenant, templates=mined.texts())
        app_label = app_label_of(schema.labels)
        synthetic: list[Pair] = []
        if app_label:  # over the most frequent templates: bounded (~7,000 pairs, ~1 s)
            top = dataclasses.replace(mined, templates=mined.templates[:SYNTH_TEMPLATES])
            synthetic = generate_for_store(templates_by_app(top, app_label), app_label=app_label)
        pool = _pool(self.examples, synthetic)
        builder = PromptBuilder([Example(p.question, p.query) for p in pool])
        baseline = RetrievalBaseline(pool, app_label=app_label or "application") if pool else None
        known = Knowledge(fingerprint, schema, mined, app_label, pool, builder, baseline)
        with self._lock:
            self._known[tenant] = known
        return known

    def _generator(self, choice: BackendChoice, known: Knowledge) -> Generator:
        if choice.name == "model":
            return self.models.get(choice.adapter)
        if self._retrieval is not None:
            return self._retrieval(known)
        if known.baseline is None:
            return _Nothing()
        return RetrievalGenerator(known.baseline, known.schema.labels)

    def ask(self, request: AskRequest) -> AskResult:
        """Answer ``request`` (UsageError when the request itself is wrong)."""
        request.check()
        started = time.perf_counter()
        timings: dict[str, float] = {}
        choice = choose_backend(request.backend, self.adapter)
        known = self.knowledge(request.tenant)
        timings["schema_s"] = time.perf_counter() - started
        mark = time.perf_counter()
        generator = self._generator(choice, known)
        timings["backend_load_s"] = time.perf_counter() - mark
        prompt = known.builder.build(request.question, known.schema)
        end = request.end_ns if request.end_ns is not None else self.clock()
        execute = None
        ground = None
        if not request.dry_run:
            start = end - request.since_ns
            execute = engine_executor(self.engine, start_ns=start, end_ns=end,
                                      tenant=request.tenant, limit=request.limit)  # fmt: skip
            probe = store_probe(self.engine, start_ns=start, end_ns=end, tenant=request.tenant)
            ground = TemplateGrounder(known.schema.templates, probe).ground
        baseline = known.baseline
        fallback = (lambda q: baseline.predict(q, known.schema.labels)) if baseline else None
        result = answer(request.question, prompt, generator, n=request.candidates,
                        labels=known.schema.labels, execute=execute,
                        fallback=fallback, ground=ground)  # fmt: skip
        timings.update(result.timings)
        return AskResult(request, result, prompt, choice, time.perf_counter() - started,
                         execute is not None and result.status == "answered",
                         len(known.examples), timings)  # fmt: skip


class _Nothing:
    """The generator of a store that knows nothing (no labels): no candidates."""

    def generate(self, prompt: Prompt, n: int) -> list[str]:
        return []
