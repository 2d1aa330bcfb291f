"""The manifest's sealed chunks: a flush rewrites a bounded manifest.json, readers see the
same segments, chunks follow compaction and retention, damage and crashes are handled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest

from logpipe.store import Manifest, Store, StoreError
from logpipe.store.manifest import encode_chunk

S = 1_000_000_000


def flush(store: Store, k: int, app: str = "a") -> None:
    ts = np.arange(3, dtype=np.int64) + k * S
    store.ingest("fake", {"app": app}, ts, [f"{app} flush {k} line {i}".encode() for i in range(3)])


def files_of(root: Path) -> set[str]:
    base = root / "tenants" / "fake"
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}


def expected_files(store: Store) -> set[str]:
    m = store.manifest("fake")
    return {"manifest.json"} | {s.path for s in m.segments} | {c.name for c in m.sealed}


def test_a_flush_rewrites_only_the_recent_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, manifest_seal_entries=4)
    written: list[tuple[str, bytes]] = []
    real = store.files.write_atomic

    def recording(rel: str, data: bytes) -> None:
        written.append((rel, data))
        real(rel, data)

    monkeypatch.setattr(store.files, "write_atomic", recording)
    for k in range(60):
        flush(store, k, "a" if k % 3 else "b")
    manifests = [json.loads(d) for rel, d in written if rel.endswith("manifest.json")]
    assert len(manifests) == 60
    assert all(len(doc["segments"]) < 8 for doc in manifests)  # at most 2 x seal inline
    assert manifests[-1]["version"] == 2 and len(manifests[-1]["chunks"]) == 14
    chunk_writes = [rel for rel, _ in written if "/manifest/" in rel]
    assert len(chunk_writes) == 14  # each entry sealed once: 4 per chunk
    writer = store.manifest("fake")
    reader = Store(tmp_path).manifest("fake")  # from disk, chunks and all
    assert reader == writer
    assert len(reader.segments) == 60 and reader.next_seq == 60
    assert files_of(tmp_path) == expected_files(store)


def test_compaction_and_retention_dissolve_the_chunks_they_touch(tmp_path: Path) -> None:
    store = Store(tmp_path, segment_bytes=4096, manifest_seal_entries=3)
    for k in range(40):
        flush(store, k)
    lines = [x for b in store.read("fake", direction="forward") for x in b["line"].to_pylist()]
    assert len(store.manifest("fake").sealed) == 12  # 3 each while 6 or more are inline
    report = store.compact(max_span_ns=10 * S)
    assert report.merges >= 1
    after = store.manifest("fake")
    assert len(after.segments) < 40
    assert files_of(tmp_path) == expected_files(store)  # dissolved chunks deleted
    assert Store(tmp_path).manifest("fake") == after
    fresh = Store(tmp_path)
    assert [x for b in fresh.read("fake", direction="forward") for x in b["line"].to_pylist()] == (
        lines
    )
    assert store.apply_retention(max_age_ns=20 * S, now_ns=40 * S).lines_removed >= 30
    assert files_of(tmp_path) == expected_files(store)
    assert Store(tmp_path).manifest("fake") == store.manifest("fake")
    assert min(s.max_ts for s in store.manifest("fake").segments) >= 20 * S


def test_small_manifests_stay_version_1_and_chunks_need_a_loader(tmp_path: Path) -> None:
    store = Store(tmp_path, manifest_seal_entries=4)
    for k in range(7):
        flush(store, k)
    doc = json.loads((tmp_path / "tenants/fake/manifest.json").read_bytes())
    assert doc["version"] == 1 and "chunks" not in doc  # older readers still read it
    flush(store, 7)
    data = (tmp_path / "tenants/fake/manifest.json").read_bytes()
    assert json.loads(data)["version"] == 2
    with pytest.raises(ValueError, match="no way to load"):
        Manifest.from_bytes(data, "fake")
    unsealed = Store(tmp_path, manifest_seal_entries=0)
    flush(unsealed, 8)  # 0: every entry inline again, the chunk retired
    doc = json.loads((tmp_path / "tenants/fake/manifest.json").read_bytes())
    assert doc["version"] == 1 and len(doc["segments"]) == 9
    assert files_of(tmp_path) == expected_files(unsealed)


def test_a_damaged_or_missing_chunk_is_a_store_error(tmp_path: Path) -> None:
    store = Store(tmp_path, manifest_seal_entries=2)
    for k in range(6):
        flush(store, k)
    chunk = tmp_path / "tenants/fake" / store.manifest("fake").sealed[0].name
    data = chunk.read_bytes()
    chunk.write_bytes(data.replace(b"flush", b"flash", 1) if b"flush" in data else data[:-2])
    with pytest.raises(StoreError, match="does not match its hash") as err:
        Store(tmp_path).manifest("fake")
    assert err.value.tenant == "fake"
    chunk.unlink()
    with pytest.raises(StoreError, match="missing"):
        Store(tmp_path).manifest("fake")
    name, forged = encode_chunk("other", store.manifest("fake").segments[:2])
    (tmp_path / "tenants/fake" / name).write_bytes(forged)
    doc = json.loads((tmp_path / "tenants/fake/manifest.json").read_bytes())
    doc["chunks"][0] = name
    (tmp_path / "tenants/fake/manifest.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="another tenant"):
        Store(tmp_path).manifest("fake")


def test_a_crash_before_the_manifest_leaves_an_orphan_chunk_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, manifest_seal_entries=2)
    for k in range(3):
        flush(store, k)
    real = store.files.write_atomic

    def chunk_then_crash(rel: str, data: bytes) -> None:
        if rel.endswith("manifest.json"):
            raise OSError(28, "No space left on device")
        real(rel, data)

    monkeypatch.setattr(store.files, "write_atomic", chunk_then_crash)
    with pytest.raises(OSError):
        flush(store, 3)
    monkeypatch.undo()
    orphans = files_of(tmp_path) - expected_files(store)
    assert len(orphans) == 1 and next(iter(orphans)).startswith("manifest/")
    writer = Store(tmp_path, manifest_seal_entries=2)
    assert writer.recover("fake") == sorted(orphans)
    flush(writer, 3)
    assert files_of(tmp_path) == expected_files(writer)
    assert len(writer.manifest("fake").segments) == 4


def test_chunks_on_another_file_system(tmp_path: Path) -> None:
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    store = Store("data", fs, manifest_seal_entries=2)
    for k in range(9):
        flush(store, k)
    assert len(store.manifest("fake").sealed) == 3
    again = Store("data", fs)
    assert again.manifest("fake") == store.manifest("fake")
    assert len([1 for b in again.read("fake") for _ in range(b.num_rows)]) == 27
