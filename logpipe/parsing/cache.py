"""The parsing cache: confirmed templates in a token tree, matched before any model call.

Why (LILAC's adaptive parsing cache): a model call costs seconds on a CPU, a log has few
events and many lines, so each event should be asked about once. The cache holds every
template the hybrid parser has settled on; a new group of lines is first matched against
it, and only a miss can cost a call. Two groups whose templates come out the same text get
the same cache entry, which is how groups the statistical miner split are merged.

The tree is keyed by whitespace tokens: a token without ``<*>`` is a literal edge, a token
that is exactly ``<*>`` is a wildcard edge that may swallow one or more tokens (a variable
such as a date can hold spaces), and a token like ``user=<*>`` is a pattern edge that
matches one token. A search visits a bounded number of nodes; its candidates are confirmed
with the template's anchored pattern (:func:`~logpipe.parsing.params.template_regex`), so
the tree only prunes and never decides alone. Among the matches the one with the most
constant characters wins (the most specific), ties to the oldest entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logpipe.errors import StateError
from logpipe.parsing.masking import VAR
from logpipe.parsing.params import template_regex

__all__ = ["CacheEntry", "TemplateCache"]

#: Nodes one search may visit (a line of many tokens against many wildcards stays cheap).
MAX_VISITS = 4096


@dataclass
class CacheEntry:
    """A confirmed template. ``source``: ``model`` (a checked model answer), ``statistical``
    (the miner's template, kept when no answer was usable) or ``seed`` (given up front)."""

    entry_id: int
    template: str
    source: str
    hits: int = 0


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    patterned: dict[str, _Node] = field(default_factory=dict)
    wild: _Node | None = None
    ends: list[int] = field(default_factory=list)


def _constant_chars(template: str) -> int:
    return len(template.replace(VAR, "").replace(" ", ""))


class TemplateCache:
    """Confirmed templates by id; see the module docstring."""

    def __init__(self) -> None:
        self._root = _Node()
        self._entries: dict[int, CacheEntry] = {}
        self._by_text: dict[str, int] = {}
        self._next_id = 1
        #: Grows whenever an entry is added or changes source (for checkpointing).
        self.revision = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, template: str, source: str) -> int:
        """The id of ``template``: its existing entry, else a new one.

        An existing statistical entry confirmed by a model answer takes that source.
        """
        found = self._by_text.get(template)
        if found is not None:
            entry = self._entries[found]
            if source != entry.source and entry.source == "statistical":
                entry.source = source
                self.revision += 1
            return found
        entry_id = self._next_id
        self._next_id += 1
        self._insert(CacheEntry(entry_id, template, source))
        return entry_id

    def _insert(self, entry: CacheEntry) -> None:
        self._entries[entry.entry_id] = entry
        self._by_text[entry.template] = entry.entry_id
        node = self._root
        for token in entry.template.split():
            if token == VAR:
                if node.wild is None:
                    node.wild = _Node()
                node = node.wild
            elif VAR in token:
                node = node.patterned.setdefault(token, _Node())
            else:
                node = node.literal.setdefault(token, _Node())
        node.ends.append(entry.entry_id)
        self.revision += 1

    def entry(self, entry_id: int) -> CacheEntry:
        """The entry ``entry_id`` (KeyError when there is none)."""
        return self._entries[entry_id]

    def entries(self) -> list[CacheEntry]:
        """Every entry, by id."""
        return [self._entries[k] for k in sorted(self._entries)]

    def match(self, line: str) -> int | None:
        """The id of the most specific cached template that matches all of ``line``."""
        tokens = line.split()
        candidates: set[int] = set()
        visits = 0
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack and visits < MAX_VISITS:
            node, at = stack.pop()
            visits += 1
            if at == len(tokens):
                candidates.update(node.ends)
                if node.wild is not None:  # a trailing variable may be empty
                    stack.append((node.wild, at))
                continue
            token = tokens[at]
            child = node.literal.get(token)
            if child is not None:
                stack.append((child, at + 1))
            for pattern, sub in node.patterned.items():
                if template_regex(pattern).fullmatch(token):
                    stack.append((sub, at + 1))
            if node.wild is not None:
                # a variable swallows one token or more (or none, before more text)
                stack.extend((node.wild, end) for end in range(at, len(tokens) + 1))
        best: CacheEntry | None = None
        for entry_id in sorted(candidates):
            entry = self._entries[entry_id]
            if template_regex(entry.template).fullmatch(line) is None:
                continue
            if best is None or _constant_chars(entry.template) > _constant_chars(best.template):
                best = entry
        if best is None:
            return None
        best.hits += 1
        return best.entry_id

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready entries."""
        return {
            "next_id": self._next_id,
            "entries": [[e.entry_id, e.template, e.source, e.hits] for e in self.entries()],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TemplateCache:
        """Rebuild from :meth:`to_dict` output (checked, never trusted blindly)."""
        cache = cls()
        try:
            for entry_id, template, source, hits in state["entries"]:
                if not isinstance(entry_id, int) or not isinstance(template, str):
                    raise StateError(f"cache entry with a bad id or template: {entry_id!r}")
                if source not in ("model", "statistical", "seed") or not isinstance(hits, int):
                    raise StateError(f"cache entry {entry_id} has a bad source or count")
                cache._insert(CacheEntry(entry_id, template, source, hits))
            cache._next_id = int(state["next_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"corrupt parsing cache state: {exc!r}") from exc
        if cache._entries and cache._next_id <= max(cache._entries):
            raise StateError("corrupt parsing cache state: next_id below an entry id")
        cache.revision = 0
        return cache
