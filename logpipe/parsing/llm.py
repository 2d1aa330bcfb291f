"""The hybrid parser behind ``--parser llm``: statistical groups, a cache, a checked model.

How a batch is parsed (LILAC's cache and LogBatcher's batching, on top of our miner):

1. The statistical miner (:class:`~logpipe.parsing.miner.TemplateMiner`) mines every line
   as usual and gives each line its statistical template (word slots split out).
2. Each *distinct statistical template* of the batch is resolved to a **cache entry** once:
   a template resolved before maps straight to its entry (the warm path: one dict lookup
   per template per batch, nothing per line).
3. A new one first asks the **parsing cache** (:mod:`logpipe.parsing.cache`): when a few
   diverse lines of the group all match the same confirmed template, and that template
   keeps most of the group's constant words, the group joins that entry (a merge: groups
   the miner split come together under one id).
4. Otherwise, if a model-call **budget** token is free (:mod:`logpipe.parsing.budget`), the
   backend is asked for the template of up to ``batch_lines`` diverse lines of the group,
   with demonstrations retrieved by similarity; the answer is **checked**
   (:mod:`logpipe.parsing.template_check`): it must match every line of its batch and keep
   the group's constant text, else it is repaired or the statistical template is kept.
5. With no token free (or no backend), the group keeps its statistical template for now,
   marked *provisional*: a later batch asks again once the budget has refilled, so a burst
   of new events degrades accuracy for a while instead of stalling ingestion.

Entries are keyed by template text, so two groups whose confirmed templates coincide share
one id. Event ids are ``E<entry id>``. The state (miner, cache, resolutions, counters) is one
JSON object (:meth:`LLMParser.save`); no pickle anywhere.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy
from logpipe.errors import ModelError, StateError
from logpipe.parsing.budget import TokenBucket
from logpipe.parsing.cache import TemplateCache
from logpipe.parsing.llm_backends import Demonstration, ParseRequest, TemplateBackend
from logpipe.parsing.miner import MinerConfig, TemplateMiner, save_state_json
from logpipe.parsing.template_check import Verdict, check_template, keeps_constants

__all__ = ["STATE_FORMAT", "LLMParser", "LLMParserConfig", "LLMStats", "diverse_sample"]

STATE_FORMAT = "logpipe-llm-parser"
STATE_VERSION = 1
#: Lines of one group looked at to pick the diverse batch and to check a cache hit.
_POOL_LINES = 64


@dataclass(frozen=True)
class LLMParserConfig:
    """``batch_lines``: lines shown per model call; ``demonstrations``: solved examples in
    the prompt; ``max_calls_per_second``/``burst``: the model-call budget (<= 0: none);
    ``wait_for_budget``: wait for the next call rather than defer the group (a batch job
    over files, where nothing queues behind the parser; the daemon defers);
    ``max_resolved``: statistical templates remembered (least recently used go)."""

    batch_lines: int = 5
    demonstrations: int = 3
    max_calls_per_second: float = 10.0
    burst: float = 8.0
    wait_for_budget: bool = False
    max_resolved: int = 200_000


@dataclass
class LLMStats:
    """What the hybrid parser did, for reports and metrics (never silent)."""

    lines: int = 0
    groups: int = 0  # statistical templates resolved for the first time
    cache_hits: int = 0  # ... of which the parsing cache answered
    model_calls: int = 0
    accepted: int = 0
    repaired: int = 0
    rejected: int = 0
    backend_errors: int = 0
    deferred: int = 0  # a call was due but the budget was spent: statistical for now
    merges: int = 0  # groups that joined an entry another group had already


@dataclass
class _Resolution:
    entry_id: int
    provisional: bool


def _similarity(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def diverse_sample(lines: Sequence[str], k: int) -> list[str]:
    """Up to ``k`` distinct lines, each as different from those picked as possible.

    Farthest-first over word sets (LogBatcher's point: lines that differ show the model
    which parts vary). Deterministic: ties go to the earlier line.
    """
    distinct = list(dict.fromkeys(lines))
    if len(distinct) <= k:
        return distinct
    words = [set(line.split()) for line in distinct]
    picked = [0]
    closest = [_similarity(words[0], w) for w in words]
    while len(picked) < k:
        best = min(range(len(distinct)), key=lambda i: (closest[i], i))
        if best in picked:
            break
        picked.append(best)
        closest = [max(c, _similarity(words[best], w)) for c, w in zip(closest, words, strict=True)]
    return [distinct[i] for i in picked]


class LLMParser:
    """Hybrid template parser; see the module docstring.

    ``backend`` None parses with the miner and the cache alone (what the checks and the
    budget fall back to). ``demos`` seed the demonstration pool (default: the shipped file).
    Thread-safe: one lock around mining and resolving.
    """

    def __init__(
        self,
        backend: TemplateBackend | None,
        *,
        miner: TemplateMiner | None = None,
        config: LLMParserConfig | None = None,
        demos: Iterable[Demonstration] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from logpipe.models.llm_parser.demos import DemoPool, load_demonstrations  # noqa: PLC0415

        self.backend = backend
        self.miner = miner if miner is not None else TemplateMiner(MinerConfig())
        self.llm_config = config or LLMParserConfig()
        self.cache = TemplateCache()
        self.stats = LLMStats()
        self.budget = TokenBucket(
            self.llm_config.max_calls_per_second, self.llm_config.burst, clock
        )
        self.demos = DemoPool(load_demonstrations() if demos is None else demos)
        self._resolved: OrderedDict[str, _Resolution] = OrderedDict()
        self._entry_groups: dict[int, int] = {}
        self._revision = 0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()

    # ------------------------------------------------------------ miner-compatible API
    @property
    def config(self) -> MinerConfig:
        """The miner's configuration (what ``logpipe parse`` reads line limits from)."""
        return self.miner.config

    @property
    def revision(self) -> int:
        """Grows whenever the state changes in a way a checkpoint must capture."""
        return self.miner.revision + self.cache.revision + self._revision

    def premasked(self, contents: pa.Array) -> pa.Array:
        """:meth:`TemplateMiner.premasked` (kernels only: thread-safe)."""
        return self.miner.premasked(contents)

    def add_batch(self, contents: pa.Array, *, premasked: pa.Array | None = None) -> pa.Array:
        """Mine a batch with the statistical miner; returns its cluster ids."""
        with self._lock:
            self.stats.lines += len(contents)
            return self.miner.add_batch(contents, premasked=premasked)

    def line_templates(
        self, cluster_ids: pa.Array, contents: pa.Array
    ) -> tuple[pa.Array, pa.Array]:
        """Per line: the confirmed template and its event id (``E<entry id>``)."""
        entry_ids, templates = self.resolve(cluster_ids, contents)
        events = pc.binary_join_element_wise("E", entry_ids.cast(pa.string()), "")
        return templates, events

    def resolve(self, cluster_ids: pa.Array, contents: pa.Array) -> tuple[pa.Array, pa.Array]:
        """Per line: the cache entry id (int64) and its template; null where the miner
        evicted the line's cluster. May call the model (within the budget)."""
        with self._lock:
            stat, _ = self.miner.line_templates(cluster_ids, contents)
            encoded = pc.dictionary_encode(stat)
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            keys: list[str] = encoded.dictionary.to_pylist()
            indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
            ids = np.full(len(keys) + 1, -1, dtype=np.int64)  # the last slot: evicted
            rows_of = self._rows_by_key(indices, len(keys))
            for k, key in enumerate(keys):
                ids[k] = self._resolve(key, rows_of[k], contents)
            texts = [self.cache.entry(int(i)).template for i in ids[:-1]] + [None]
            pos = from_numpy(np.where(indices < 0, len(keys), indices))
            entry_ids = pa.array(ids, pa.int64(), mask=ids < 0).take(pos)
            return entry_ids, pa.array(texts, pa.string()).take(pos)

    def _rows_by_key(self, indices: np.ndarray, n_keys: int) -> list[np.ndarray]:
        """The first rows (up to the pool size) of each key, by one stable sort."""
        out: list[np.ndarray] = [np.empty(0, np.int64)] * n_keys
        order = np.argsort(indices, kind="stable")
        bounds = np.searchsorted(indices[order], np.arange(n_keys + 1))
        for k in range(n_keys):
            out[k] = order[bounds[k] : min(bounds[k + 1], bounds[k] + _POOL_LINES)]
        return out

    def template_of(self, entry_id: int) -> str:
        """The template of a cache entry (KeyError when there is none)."""
        return self.cache.entry(entry_id).template

    # ------------------------------------------------------------ resolution
    def _resolve(self, stat: str, rows: np.ndarray, contents: pa.Array) -> int:
        known = self._resolved.get(stat)
        if known is not None:
            self._resolved.move_to_end(stat)
            if not known.provisional or not self.budget.available():
                return known.entry_id
        lines = [str(x) for x in contents.take(from_numpy(rows)).to_pylist() if x is not None]
        sample = diverse_sample(lines, self.llm_config.batch_lines) or [stat]
        if known is None:
            self.stats.groups += 1
            hit = self._cache_hit(stat, sample)
            if hit is not None:
                self.stats.cache_hits += 1
                return self._settle(stat, hit, provisional=False)
        if self.backend is None:
            return self._settle(stat, self.cache.add(stat, "statistical"), provisional=False)
        if self.llm_config.wait_for_budget and not self.budget.available():
            self._sleep(self.budget.wait_secs())
        if not self.budget.take():
            self.stats.deferred += 1
            entry_id = known.entry_id if known else self.cache.add(stat, "statistical")
            return self._settle(stat, entry_id, provisional=True)
        template, source = self._ask(stat, sample)
        return self._settle(stat, self.cache.add(template, source), provisional=False)

    def _cache_hit(self, stat: str, sample: Sequence[str]) -> int | None:
        found = {self.cache.match(line) for line in sample}
        if len(found) != 1:
            return None
        (entry_id,) = found
        if entry_id is None:
            return None
        if not keeps_constants(self.cache.entry(entry_id).template, stat):
            return None
        return entry_id

    def _ask(self, stat: str, sample: list[str]) -> tuple[str, str]:
        """The checked template of ``sample`` and its cache source."""
        assert self.backend is not None
        demos = tuple(self.demos.select(sample[0], self.llm_config.demonstrations))
        request = ParseRequest(tuple(sample), stat, demos)
        self.stats.model_calls += 1
        started = self._clock()
        try:
            reply = self.backend.propose(request)
        except ModelError:
            self.stats.backend_errors += 1
            return stat, "statistical"
        finally:
            self.budget.charge(self._clock() - started)
        result = check_template(reply, sample, stat)
        if result.verdict is Verdict.ACCEPTED:
            self.stats.accepted += 1
        elif result.verdict is Verdict.REPAIRED:
            self.stats.repaired += 1
        else:
            self.stats.rejected += 1
            return stat, "statistical"
        self.demos.add(Demonstration(sample[0], result.template))
        return result.template, "model"

    def _settle(self, stat: str, entry_id: int, *, provisional: bool) -> int:
        previous = self._resolved.get(stat)
        if previous is None or previous.entry_id != entry_id:
            if previous is not None:
                self._entry_groups[previous.entry_id] -= 1
            held = self._entry_groups.get(entry_id, 0)
            if held:
                self.stats.merges += 1
            self._entry_groups[entry_id] = held + 1
            self._revision += 1
        self._resolved[stat] = _Resolution(entry_id, provisional)
        self._resolved.move_to_end(stat)
        if len(self._resolved) > self.llm_config.max_resolved:
            _, gone = self._resolved.popitem(last=False)
            self._entry_groups[gone.entry_id] -= 1
        return entry_id

    # ------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: the miner's, the cache, the resolutions and the counters."""
        with self._lock:
            return {
                "format": STATE_FORMAT,
                "version": STATE_VERSION,
                "config": asdict(self.llm_config),
                "stats": asdict(self.stats),
                "miner": self.miner.to_dict(),
                "cache": self.cache.to_dict(),
                "resolved": [[k, r.entry_id, r.provisional] for k, r in self._resolved.items()],
            }

    @classmethod
    def from_dict(
        cls, state: dict[str, Any], backend: TemplateBackend | None = None, **kwargs: Any
    ) -> LLMParser:
        """Rebuild from :meth:`to_dict` output (checked, never trusted blindly); the backend
        is not part of the state: the caller gives it."""
        if state.get("format") != STATE_FORMAT:
            raise StateError(
                "not a logpipe LLM parser state (missing format marker); a state "
                "saved with --parser stat resumes only with --parser stat"
            )
        if state.get("version") != STATE_VERSION:
            raise StateError(f"LLM parser state version {state.get('version')} is not "
                             f"supported (this logpipe reads version {STATE_VERSION})")  # fmt: skip
        try:
            known = {f.name for f in fields(LLMParserConfig)}
            config = LLMParserConfig(**{k: v for k, v in state["config"].items() if k in known})
            parser = cls(backend, miner=TemplateMiner.from_dict(state["miner"]),
                         config=kwargs.pop("config", config), **kwargs)  # fmt: skip
            parser.cache = TemplateCache.from_dict(state["cache"])
            parser.stats = LLMStats(**state["stats"])
            for key, entry_id, provisional in state["resolved"]:
                if not isinstance(key, str) or not isinstance(entry_id, int):
                    raise StateError(f"resolution with a bad key or id: {key!r}")
                parser.cache.entry(entry_id)  # KeyError when it names no entry
                parser._resolved[key] = _Resolution(entry_id, bool(provisional))
                parser._entry_groups[entry_id] = parser._entry_groups.get(entry_id, 0) + 1
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"corrupt LLM parser state: {exc!r}") from exc
        return parser

    def save(self, path: str | Path) -> None:
        """Write the state as JSON (to a temp file, then renamed: never half-written)."""
        save_state_json(path, self.to_dict())

    @classmethod
    def load(
        cls, path: str | Path, backend: TemplateBackend | None = None, **kwargs: Any
    ) -> LLMParser:
        """Read a state written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{path}: cannot read LLM parser state: {exc}") from exc
        if not isinstance(state, dict):
            raise StateError(f"{path}: LLM parser state must be a JSON object")
        return cls.from_dict(state, backend, **kwargs)
