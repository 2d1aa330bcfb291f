"""The online template miner: a Drain-family prefix tree over masked tokens.

How a line is handled (each step exists because of a failure mode of plain Drain):

1. **Mask** the obvious variables (:mod:`logpipe.parsing.masking`), so routing and
   similarity only see constant text. :meth:`TemplateMiner.add_batch` first rewrites the
   plain cases over the whole Arrow batch (``premask``) and mines each distinct result once.
2. **Exact cache**: a line whose masked form was seen before goes straight to its cluster.
   Most lines of a real log hit this, which is what makes the miner fast.
3. **Route** by token count and the first ``depth`` tokens (tokens holding a variable route
   as ``<*>``; a node with too many children sends newcomers to ``<*>``), then pick the
   most similar cluster in the leaf: equal positions count one, a differing pair that is
   not two plain words counts half. When the leaf has no match, a stricter search over every
   cluster of that length catches lines whose routing tokens are themselves variables.
4. **Generalise** the chosen cluster: a position that differs becomes a variable, keeping
   the punctuation around the value (``user=bob`` vs ``user=eve`` gives ``user=<*>``).
5. **Word slots**: a position that has only held a few plain words (``Started``,
   ``Paused``...) names the event rather than a value; :meth:`TemplateMiner.line_templates`
   gives each such word its own template and event id.
6. **Post-process** templates to the Loghub-2.0 conventions when they are read.

Memory is bounded: at most ``max_clusters`` clusters (least recently used evicted, counted),
lines longer than ``max_line_chars`` are truncated (counted), the exact cache is bounded.
Output is deterministic: the same input in the same order gives the same ids and templates.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe.arrowutil import from_numpy
from logpipe.errors import StateError
from logpipe.parsing.masking import VAR, mask_content, premask
from logpipe.parsing.params import extract_params, extract_params_batch
from logpipe.parsing.postprocess import loghub_postprocess

__all__ = ["ClusterInfo", "MinerConfig", "MinerStats", "TemplateMiner"]

STATE_VERSION = 2


@dataclass(frozen=True)
class MinerConfig:
    """The single configuration used for every log system (no per-dataset tuning).

    ``similarity_threshold``: share of positions that must agree to join a cluster;
    ``rescue_threshold``: the same for the search outside the routed leaf; ``enum_max_values``:
    the most words a slot may hold and still name the event; ``depth``: routing tokens.
    """

    similarity_threshold: float = 0.8
    rescue_threshold: float = 0.95
    enum_max_values: int = 4
    depth: int = 2
    max_children: int = 64
    max_clusters: int = 100_000
    max_line_chars: int = 20_000
    cache_size: int = 200_000


@dataclass(frozen=True)
class ClusterInfo:
    """A mined template: its id, current template text and the number of lines seen."""

    cluster_id: int
    template: str
    size: int


@dataclass
class MinerStats:
    """Counters for everything the miner did not handle in full (never silent)."""

    lines: int = 0
    cache_hits: int = 0
    truncated_lines: int = 0
    evicted_clusters: int = 0


@dataclass
class _Cluster:
    cid: int
    tokens: list[str]
    size: int = 0
    text: str | None = field(default=None, repr=False)
    # Positions that became variables between plain words, with the words seen there. A slot
    # holding more than ``enum_max_values`` words is a real variable and keeps an overflow
    # marker instead of growing.
    slots: dict[int, set[str]] = field(default_factory=dict, repr=False)

    def template(self) -> str:
        if self.text is None:
            self.text = loghub_postprocess(" ".join(self.tokens))
        return self.text


_WORDISH = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# Nouns after which a word is a value however few values appear ("user root", "host db1").
_ENTITY_NOUNS = frozenset(
    [
        "user",
        "users",
        "username",
        "login",
        "account",
        "host",
        "hostname",
        "node",
        "server",
        "client",
        "domain",
    ]
)


def _names_a_value(token: str) -> bool:
    return token.rstrip(":=").lower() in _ENTITY_NOUNS


_OVERFLOW = ""  # marks a slot with too many (or non-word) values: never a word itself

_OUTER_DELIMS = frozenset(",;:=|\"'[](){}<>!?")


def _generalise(old: str, new: str) -> str:
    """The most specific token that covers both ``old`` and ``new``.

    The common prefix that ends at punctuation and the common suffix that starts at
    punctuation are kept; the part between becomes one variable. So ``user=bob`` and
    ``user=eve`` give ``user=<*>`` and ``[ntp1]``/``[ntp2]`` give ``[<*>]``, while values
    that merely share leading characters (``msra-41``/``msra-44``) become one variable.
    """
    if old in (VAR, new):
        return old
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    # snap the prefix back to just after the last punctuation inside it
    while p > 0 and old[p - 1] not in _OUTER_DELIMS:
        p -= 1
    s = 0
    while s < n - p and old[-1 - s] == new[-1 - s]:
        s += 1
    while s > 0 and old[len(old) - s] not in _OUTER_DELIMS:
        s -= 1
    if p + s > len(old):
        s = len(old) - p
    if not (p or s):
        return VAR
    return old[:p] + VAR + old[len(old) - s :]


# A run of at least this many values at the end of a message is a list (``to delete blk_1
# blk_2 ...``) whose length varies from line to line: it is one variable. Shorter runs are
# usually fixed-arity tuples (``x y z``) and stay one variable per value.
_LIST_RUN = 5


def _collapse_value_list(tokens: list[str]) -> None:
    run = 0
    while run < len(tokens) and tokens[-1 - run] == VAR:
        run += 1
    if run >= _LIST_RUN:
        del tokens[len(tokens) - run + 1 :]


def save_state_json(path: str | Path, state: dict[str, Any]) -> None:
    """``state`` as JSON at ``path``, through a temp file and a rename, so a parser state is
    never half-written (every parser's ``save`` goes through here)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
    tmp.replace(target)


class TemplateMiner:
    """Online Drain-family template miner; see the module docstring for the algorithm."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self.stats = MinerStats()
        self._clusters: OrderedDict[int, _Cluster] = OrderedDict()
        self._root: dict[int, dict[str, Any]] = {}
        self._by_length: dict[int, list[int]] = {}
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._next_id = 1
        #: Grows whenever a template, a word slot or the set of clusters changes (not on a
        #: mere count): a saved state older than this no longer gives the same ids/templates.
        self.revision = 0

    # ------------------------------------------------------------------ mining
    def add(self, content: str) -> int:
        """Mine one message body; return the id of its cluster."""
        cfg = self.config
        self.stats.lines += 1
        if len(content) > cfg.max_line_chars:
            content = content[: cfg.max_line_chars]
            self.stats.truncated_lines += 1
        tokens = self._line_tokens(content)
        key = " ".join(tokens)
        cid = self._cache.get(key)
        if cid is not None:
            cluster = self._clusters.get(cid)
            if cluster is not None:
                self.stats.cache_hits += 1
                cluster.size += 1
                self._clusters.move_to_end(cid)
                return cid
        cluster = self._match(tokens)
        if cluster is None:
            cluster = self._create(tokens)
        else:
            self._absorb(cluster, tokens)
        cluster.size += 1
        self._clusters.move_to_end(cluster.cid)
        self._remember(key, cluster.cid)
        return cluster.cid

    def _line_tokens(self, content: str) -> list[str]:
        tokens = mask_content(content)
        if len(tokens) >= _LIST_RUN and tokens[-1] == VAR and tokens[-_LIST_RUN] == VAR:
            _collapse_value_list(tokens)
        return tokens

    def add_many(self, contents: Iterable[str]) -> list[int]:
        """Mine a batch of message bodies in order; return their cluster ids."""
        add = self.add
        return [add(c) for c in contents]

    def premasked(self, contents: pa.Array) -> pa.Array:
        """The dedup keys :meth:`add_batch` mines by (Arrow kernels only: thread-safe).

        Computing them is most of the kernel work of mining, so a pipeline may do it on a
        worker thread and hand the result to :meth:`add_batch`.
        """
        contents = pc.fill_null(contents, "")
        masked = premask(contents)
        if self.config.max_line_chars:
            # truncation must see the original text
            long_lines = pc.greater(pc.utf8_length(contents), self.config.max_line_chars)
            if pc.any(long_lines).as_py():
                masked = pc.if_else(long_lines, contents, masked)
        return masked

    def add_batch(self, contents: pa.Array, *, premasked: pa.Array | None = None) -> pa.Array:
        """Mine an Arrow string array in order; return an int64 array of cluster ids.

        ``premasked`` (optional) is :meth:`premasked` of ``contents``, plain or
        dictionary-encoded.

        Why it is faster than :meth:`add_many`: identical messages always land in the same
        cluster and never change its template, so each distinct message of the batch is
        mined once (in order of first appearance, as online mining would see them) and the
        ids are spread back with one vectorised ``take``. Null entries mine as ``""``.
        """
        if len(contents) == 0:
            return pa.array([], pa.int64())
        masked = self.premasked(contents) if premasked is None else premasked
        # a caller that already dictionary-encoded the keys saves doing it twice
        encoded = masked if isinstance(masked, pa.DictionaryArray) else pc.dictionary_encode(masked)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        uniques = encoded.dictionary.to_pylist()
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(uniques))
        add = self.add
        ids = np.empty(len(uniques), dtype=np.int64)
        for i, text in enumerate(uniques):
            ids[i] = add(text)
        # add() counted each distinct message once; count the repeats too
        extra = counts - 1
        for j in np.flatnonzero(extra).tolist():
            cluster = self._clusters.get(int(ids[j]))
            if cluster is not None:
                cluster.size += int(extra[j])
        self.stats.lines += int(extra.sum())
        self.stats.cache_hits += int(extra.sum())
        return from_numpy(ids[indices])

    def _remember(self, key: str, cid: int) -> None:
        cache = self._cache
        cache[key] = cid
        if len(cache) > self.config.cache_size:
            cache.popitem(last=False)

    def _route_tokens(self, tokens: list[str]) -> list[str]:
        return [t if VAR not in t else VAR for t in tokens[: self.config.depth]]

    def _leaf(self, tokens: list[str], create: bool) -> list[int] | None:
        node: dict[str, Any] | None = self._root.get(len(tokens))
        if node is None:
            if not create:
                return None
            node = self._root.setdefault(len(tokens), {})
        for route in self._route_tokens(tokens):
            child = node.get(route)
            if child is None:
                if create:
                    key = route
                    if key != VAR and len(node) >= self.config.max_children:
                        key = VAR
                    child = node.setdefault(key, {})
                else:
                    child = node.get(VAR)
                    if child is None:
                        return None
            node = child
        leaf = node.get("")
        if leaf is None:
            if not create:
                return None
            leaf = node[""] = []
        return leaf

    def _match(self, tokens: list[str]) -> _Cluster | None:
        leaf = self._leaf(tokens, create=False)
        found = self._best(leaf, tokens, self.config.similarity_threshold) if leaf else None
        if found is None and len(tokens) > self.config.depth:
            # The routing tokens may themselves be variables (``com.example.Job: ...``): a
            # long line that matches a cluster elsewhere almost everywhere belongs to it.
            found = self._best(
                self._by_length.get(len(tokens), []), tokens, self.config.rescue_threshold
            )
        return found

    def _best(self, leaf: list[int], tokens: list[str], threshold: float) -> _Cluster | None:
        best: _Cluster | None = None
        best_sim = -1.0
        best_params = -1
        n = len(tokens) or 1
        for cid in leaf:
            cluster = self._clusters[cid]
            same = 0
            params = 0
            soft = 0
            for t, u in zip(cluster.tokens, tokens, strict=True):
                if t == u:
                    same += 1
                elif t == VAR:
                    params += 1
                    soft += 1
                elif not (t.isalpha() and u.isalpha()):
                    soft += 1
            sim = (same + 0.5 * soft) / n
            if sim > best_sim or (sim == best_sim and params > best_params):
                best, best_sim, best_params = cluster, sim, params
        if best is None:
            return None
        if best_sim >= threshold or (not tokens or best_params == len(tokens)):
            return best
        return None

    def _create(self, tokens: list[str]) -> _Cluster:
        cid = self._next_id
        self._next_id += 1
        cluster = _Cluster(cid, list(tokens))
        self.revision += 1
        self._clusters[cid] = cluster
        leaf = self._leaf(tokens, create=True)
        assert leaf is not None
        leaf.append(cid)
        self._by_length.setdefault(len(tokens), []).append(cid)
        if len(self._clusters) > self.config.max_clusters:
            self._evict()
        return cluster

    def _evict(self) -> None:
        cid, cluster = self._clusters.popitem(last=False)
        leaf = self._leaf(cluster.tokens, create=False)
        if leaf is not None and cid in leaf:
            leaf.remove(cid)
        self._by_length[len(cluster.tokens)].remove(cid)
        self.stats.evicted_clusters += 1
        self.revision += 1

    def _absorb(self, cluster: _Cluster, tokens: list[str]) -> None:
        changed = False
        ctoks = cluster.tokens
        slots = cluster.slots
        for i, (t, u) in enumerate(zip(ctoks, tokens, strict=True)):
            if t != u:
                seen = slots.get(i)
                if seen is not None:
                    if _OVERFLOW not in seen:
                        held = len(seen)
                        seen.add(u if _WORDISH.fullmatch(u) else _OVERFLOW)
                        if len(seen) > self.config.enum_max_values:
                            seen.clear()
                            seen.add(_OVERFLOW)
                        if len(seen) != held or _OVERFLOW in seen:
                            self.revision += 1
                elif (
                    VAR not in t
                    and _WORDISH.fullmatch(t)
                    and _WORDISH.fullmatch(u)
                    and not (i and _names_a_value(ctoks[i - 1]))
                ):
                    slots[i] = {t, u}
                    self.revision += 1
                g = _generalise(t, u)
                if g != t:
                    ctoks[i] = g
                    changed = True
        if changed:
            cluster.text = None
            self.revision += 1

    # ------------------------------------------------------------------ reading
    def template_of(self, cluster_id: int) -> str:
        """The cluster's current template, in Loghub-2.0 conventions."""
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise KeyError(f"no cluster {cluster_id} (evicted or never created)")
        return cluster.template()

    def _enum_slots(self, cluster: _Cluster) -> list[tuple[int, frozenset[str]]]:
        """(variable index in the template, words) of each slot that is a small word set."""
        out = []
        for pos in sorted(cluster.slots):
            seen = cluster.slots[pos]
            if _OVERFLOW in seen or cluster.tokens[pos] != VAR:
                continue
            index = loghub_postprocess(" ".join(cluster.tokens[:pos])).count(VAR) if pos else 0
            out.append((index, frozenset(seen)))
        return out

    def cluster_templates(self, cluster_ids: pa.Array) -> pa.Array:
        """Per line: its cluster's template as mined so far (null when evicted).

        Unlike :meth:`line_templates`, word slots are not filled in: the archive stores
        their words as a value column, which costs less than one template per word.
        """
        return self._generic(cluster_ids, word_slots=False)[0]

    def _generic(
        self, cluster_ids: pa.Array, *, word_slots: bool = True
    ) -> tuple[pa.Array, pa.Array, list[int]]:
        """Per line: the cluster's template and event id; and the clusters with word slots.

        Finding the word slots costs a post-processing pass per slot: skip it unless asked.
        """
        ids_np = cluster_ids.to_numpy(zero_copy_only=False)
        uniq = sorted(pc.unique(cluster_ids).to_pylist())  # np.unique would import numpy.ma
        generic: list[str | None] = []
        eids: list[str | None] = []
        split: list[int] = []
        for cid in uniq:
            cluster = self._clusters.get(int(cid))
            generic.append(cluster.template() if cluster is not None else None)
            eids.append(f"E{cid}" if cluster is not None else None)
            if word_slots and cluster is not None and cluster.slots and self._enum_slots(cluster):
                split.append(int(cid))
        pos = from_numpy(np.searchsorted(np.array(uniq, dtype=np.int64), ids_np))
        templates = pa.array(generic, pa.string()).take(pos)
        events = pa.array(eids, pa.string()).take(pos)
        return templates, events, split

    def line_templates(
        self, cluster_ids: pa.Array, contents: pa.Array
    ) -> tuple[pa.Array, pa.Array]:
        """Per line: the final template and the event id (vectorised over a batch).

        Why not just the cluster's template: a variable slot that only ever held a few
        words (``VM Started``/``VM Paused``, ``LOOKING``/``LEADING``) names the kind of
        event, not a value, so each of its words gets its own template and event id
        (``E7-Started``). The decision uses everything mined so far, so call this after
        mining. Evicted clusters give a null template and id.
        """
        templates, events, split = self._generic(cluster_ids)
        if not split:
            return templates, events
        ids_np = cluster_ids.to_numpy(zero_copy_only=False)
        tmpl_list = templates.to_pylist()
        event_list = events.to_pylist()
        for cid in split:
            cluster = self._clusters[cid]
            rows = np.flatnonzero(ids_np == cid)
            sub = pc.fill_null(contents.take(from_numpy(rows)), "")
            params = extract_params_batch(
                {cid: cluster.template()}, pa.array([cid] * len(rows)), sub
            )
            slots = self._enum_slots(cluster)
            cache: dict[tuple[str | None, ...], tuple[str, str]] = {}
            for row, values in zip(rows.tolist(), params.to_pylist(), strict=True):
                key = tuple(values[i] if i < len(values) else None for i, _ in slots)
                hit = cache.get(key)
                if hit is None:
                    hit = cache[key] = self._specialise(cluster, slots, key)
                tmpl_list[row], event_list[row] = hit
        return pa.array(tmpl_list, pa.string()), pa.array(event_list, pa.string())

    def _specialise(
        self,
        cluster: _Cluster,
        slots: list[tuple[int, frozenset[str]]],
        values: tuple[str | None, ...],
    ) -> tuple[str, str]:
        """The template and event id of a cluster with its word slots filled in."""
        pieces = cluster.template().split(VAR)
        fill: dict[int, str] = {}
        for (index, words), value in zip(slots, values, strict=True):
            if value is not None and value in words:
                fill[index] = value
        if not fill:
            return cluster.template(), f"E{cluster.cid}"
        out = [pieces[0]]
        for i, piece in enumerate(pieces[1:]):
            out.append(fill.get(i, VAR))
            out.append(piece)
        suffix = "-".join(fill[i] for i in sorted(fill))
        return loghub_postprocess("".join(out)), f"E{cluster.cid}-{suffix}"

    def line_template(self, cluster_id: int, content: str) -> str:
        """The final template of one line (see :meth:`line_templates`)."""
        templates, _ = self.line_templates(pa.array([cluster_id], pa.int64()), pa.array([content]))
        value = templates[0].as_py()
        if value is None:
            raise KeyError(f"no cluster {cluster_id} (evicted or never created)")
        return str(value)

    def params_of(self, cluster_id: int, content: str) -> list[str]:
        """The values of the template's variables in ``content`` (empty if it no longer fits)."""
        return extract_params(self.template_of(cluster_id), content)

    def clusters(self) -> list[ClusterInfo]:
        """Every live cluster, by id."""
        return [
            ClusterInfo(c.cid, c.template(), c.size)
            for c in sorted(self._clusters.values(), key=lambda c: c.cid)
        ]

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: config, counters and clusters in LRU order."""
        return {
            "format": "logpipe-miner",
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "stats": asdict(self.stats),
            "next_id": self._next_id,
            "clusters": [
                [c.cid, c.size, c.tokens, {str(k): sorted(v) for k, v in c.slots.items()}]
                for c in self._clusters.values()
            ],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TemplateMiner:
        """Rebuild a miner from :meth:`to_dict` output (validated, never trusted blindly)."""
        try:
            if state.get("format") != "logpipe-miner":
                raise StateError("not a logpipe miner state (missing format marker)")
            if state.get("version") != STATE_VERSION:
                raise StateError(
                    f"miner state version {state.get('version')} is not supported "
                    f"(this logpipe reads version {STATE_VERSION})"
                )
            miner = cls(MinerConfig(**state["config"]))
            miner.stats = MinerStats(**state["stats"])
            for cid, size, tokens, slots in state["clusters"]:
                if not isinstance(cid, int) or not isinstance(size, int):
                    raise StateError(f"cluster entry with a non-integer id or size: {cid!r}")
                if not all(isinstance(t, str) for t in tokens):
                    raise StateError(f"cluster {cid} has non-string tokens")
                cluster = _Cluster(cid, list(tokens), size)
                cluster.slots = {int(k): {str(w) for w in v} for k, v in dict(slots).items()}
                miner._clusters[cid] = cluster
                leaf = miner._leaf(cluster.tokens, create=True)
                assert leaf is not None
                leaf.append(cid)
                miner._by_length.setdefault(len(cluster.tokens), []).append(cid)
            miner._next_id = int(state["next_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"corrupt miner state: {exc!r}") from exc
        return miner

    def save(self, path: str | Path) -> None:
        """Write the state as JSON (to a temp file, then renamed: never half-written)."""
        save_state_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TemplateMiner:
        """Read a state written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{path}: cannot read miner state: {exc}") from exc
        if not isinstance(state, dict):
            raise StateError(f"{path}: miner state must be a JSON object")
        return cls.from_dict(state)
