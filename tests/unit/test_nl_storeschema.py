"""Templates mined from a bounded sample of a store, and cached while the store is unchanged
(in memory and on disk; a damaged cache file is ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from logpipe.nl.storeschema import (
    MinedTemplate,
    SampleLimits,
    StoreTemplates,
    TemplateCache,
    app_label_of,
    mine_store_templates,
    store_fingerprint,
    templates_by_app,
)
from logpipe.nl.synth import generate_for_store
from logpipe.store import Store
from tests.nlfakes import TEMPLATES, webshop_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return webshop_store(tmp_path / "store")[0]


def test_the_sample_yields_the_templates_of_the_lines(store: Store) -> None:
    mined = mine_store_templates(store, "fake")
    texts = mined.texts()
    for _, template in TEMPLATES:  # each event of the fake system is found
        assert any(t.endswith(template) for t in texts), (template, texts)
    assert sum(t.count for t in mined.templates) == mined.lines == 240
    assert mined.streams == 4  # 2 hosts x 2 levels
    failed = next(t for t in mined.templates if "Failed login" in t.template)
    assert failed.labels["level"] == ("WARN",) and failed.labels["app"] == ("webshop",)
    assert all(len(s) == 3 for s in failed.samples)  # user, address, port
    assert [t.count for t in mined.templates] == sorted((t.count for t in mined.templates),
                                                        reverse=True)  # fmt: skip


def test_the_sample_is_bounded(store: Store) -> None:
    small = mine_store_templates(store, "fake", SampleLimits(lines_per_stream=5, max_streams=2,
                                                             max_templates=1))  # fmt: skip
    assert small.streams == 2 and small.lines <= 10 and len(small.templates) == 1


def test_the_cache_holds_until_the_store_changes(store: Store, tmp_path: Path) -> None:
    cache = TemplateCache(tmp_path / "cache")
    first = cache.get(store, "fake")
    assert cache.get(store, "fake") == first and (cache.hits, cache.misses) == (1, 1)
    again = TemplateCache(tmp_path / "cache")  # a new process: read from disk
    assert again.get(store, "fake") == first and again.hits == 1
    store.ingest("fake", {"app": "webshop", "host": "web3", "level": "INFO"},
                 np.array([10**18], dtype=np.int64), [b"Cache flushed"])  # fmt: skip
    assert store_fingerprint(store, "fake") != first.fingerprint
    changed = cache.get(store, "fake")
    assert cache.misses == 2 and changed.streams == 5


def test_a_damaged_cache_file_is_ignored_and_rewritten(store: Store, tmp_path: Path) -> None:
    cache = TemplateCache(tmp_path / "cache")
    good = cache.get(store, "fake")
    (path,) = (tmp_path / "cache").glob("templates-*.json")
    for damage in ('{"version": 1, "templates": [{"template": 3}]}', "not json", "[]"):
        path.write_text(damage)
        fresh = TemplateCache(tmp_path / "cache")
        assert fresh.get(store, "fake") == good and fresh.misses == 1
        assert '"fingerprint"' in path.read_text()


def test_the_application_label_is_found_by_name_or_by_fewest_values() -> None:
    assert app_label_of({"host": ["a", "b"], "app": ["x"], "job": ["y"]}) == "app"
    assert app_label_of({"host": ["a", "b", "c"], "team": ["t1", "t2"]}) == "team"
    assert app_label_of({}) is None


def test_store_templates_give_synthetic_examples_about_the_store(store: Store) -> None:
    mined = mine_store_templates(store, "fake")
    groups = templates_by_app(mined, "app")
    assert list(groups) == ["webshop"]
    assert all("app" not in info.label_values for info in groups["webshop"])
    pairs = generate_for_store(groups, app_label="app")
    assert pairs and all('app="webshop"' in p.query for p in pairs)
    assert any("Failed login" in p.query for p in pairs)
    assert generate_for_store(groups, app_label="app") == pairs  # deterministic


def test_a_template_of_many_applications_gives_examples_for_two() -> None:
    shared = MinedTemplate("Started <*>", 9, (("a",),), {"app": ("a1", "a2", "a3"), "h": ("x",)})
    groups = templates_by_app(StoreTemplates((shared,), "f", 9, 3), "app")
    assert sorted(groups) == ["a1", "a2"]
    assert groups["a1"][0].label_values == {"h": {"x"}}
