"""PLACEHOLDER: the template miner's public interface (the real miner replaces the body).

The interface is what the CLI, benchmarks and later stages call:

* ``add(content) -> cluster id`` — online, one message body at a time;
* ``add_many(contents) -> list[int]`` — the same over a batch (faster: shared caches);
* ``template_of(id)`` — the cluster's *current* template (``<*>`` marks a variable);
  templates only generalise as lines arrive, so the final template of a cluster is the one
  to report for all its lines;
* ``params_of(id, content)`` — the variable values of a line under the cluster's template;
* ``clusters()`` — id, template and size of every live cluster;
* ``to_dict()``/``from_dict()``/``save()``/``load()`` — JSON state, never pickle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ClusterInfo", "MinerConfig", "TemplateMiner"]


@dataclass(frozen=True)
class MinerConfig:
    """The single configuration used for every log system."""

    max_clusters: int = 100_000
    max_line_chars: int = 20_000


@dataclass(frozen=True)
class ClusterInfo:
    """A mined template: its id, current template text and the number of lines seen."""

    cluster_id: int
    template: str
    size: int


class TemplateMiner:
    """Groups messages by exact content (placeholder for the Drain-family miner)."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._ids: dict[str, int] = {}
        self._templates: list[str] = []
        self._sizes: list[int] = []

    def add(self, content: str) -> int:
        cid = self._ids.get(content)
        if cid is None:
            cid = len(self._templates) + 1
            self._ids[content] = cid
            self._templates.append(content)
            self._sizes.append(0)
        self._sizes[cid - 1] += 1
        return cid

    def add_many(self, contents: Iterable[str]) -> list[int]:
        return [self.add(c) for c in contents]

    def template_of(self, cluster_id: int) -> str:
        return self._templates[cluster_id - 1]

    def params_of(self, cluster_id: int, content: str) -> list[str]:
        return []

    def clusters(self) -> list[ClusterInfo]:
        return [
            ClusterInfo(i + 1, t, s)
            for i, (t, s) in enumerate(zip(self._templates, self._sizes, strict=True))
        ]
