"""The log store: ingest, read order and bounds, tenants, idempotency, retention, crashes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from logpipe.errors import LogpipeError, StoreError
from logpipe.labels import LabelMatcher, MatchOp
from logpipe.records import RAW_SCHEMA
from logpipe.store import DEFAULT_TENANT, Store, segfile, validate_tenant
from logpipe.store import store as store_module
from tests.conftest import REPO

Row = tuple[int, str, bytes]


def rows(batches: Iterable[pa.RecordBatch]) -> list[Row]:
    out: list[Row] = []
    for b in batches:
        assert b.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
        out += zip(
            b["ts"].cast(pa.int64()).to_pylist(),
            b["stream"].cast(pa.string()).to_pylist(),
            b["line"].to_pylist(),
            strict=True,
        )
    return out


def eq(name: str, value: str) -> LabelMatcher:
    return LabelMatcher(name, MatchOp.EQ, value)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store", segment_bytes=64)


def test_lines_come_back_sorted_stably_and_within_bounds(store: Store) -> None:
    report = store.ingest("fake", {"app": "a"}, [30, 10, 20, 10], [b"c", b"a1", b"b", b"a2"])
    assert report.accepted == 4 and report.rejected == {}
    fwd = rows(store.read("fake", [eq("app", "a")], direction="forward"))
    assert [line for _, _, line in fwd] == [b"a1", b"a2", b"b", b"c"]
    assert rows(store.read("fake", [eq("app", "a")])) == fwd[::-1]  # backward by default
    # start inclusive, end exclusive (Loki's range semantics)
    assert [r[0] for r in rows(store.read("fake", [], 10, 30, direction="forward"))] == [
        10,
        10,
        20,
    ]
    assert rows(store.read("fake", [], 31, 100)) == []


def test_merge_across_streams_and_ingests_and_limit(store: Store) -> None:
    store.ingest("fake", {"app": "b"}, [5, 15], [b"b5", b"b15 " + b"x" * 80])
    store.ingest("fake", {"app": "a"}, [5, 10], [b"a5", b"a10"])
    store.ingest("fake", {"app": "a"}, [10, 12], [b"a10 again", b"a12"])
    fwd = rows(store.read("fake", direction="forward"))
    assert fwd == [
        (5, '{app="a"}', b"a5"),
        (5, '{app="b"}', b"b5"),
        (10, '{app="a"}', b"a10"),
        (10, '{app="a"}', b"a10 again"),
        (12, '{app="a"}', b"a12"),
        (15, '{app="b"}', b"b15 " + b"x" * 80),
    ]
    assert rows(store.read("fake", limit=2)) == fwd[::-1][:2]
    assert rows(store.read("fake", direction="forward", limit=3)) == fwd[:3]
    assert rows(store.read("fake", [LabelMatcher("app", MatchOp.RE, "a|c")], limit=0)) == []


def test_bad_lines_are_counted_not_raised(store: Store) -> None:
    report = store.ingest("fake", {"a": "1"}, [1, -1, 2, 1 << 62], [b"ok", b"x", b"a\nb", b"y"])
    assert report.accepted == 2
    assert report.rejected == {"timestamp_out_of_range": 2}


def test_multi_line_entries_are_stored_whole(store: Store) -> None:
    trace = b"java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:10)\n\tat d.E.f(E.java:7)"
    entries = [b"start", trace, b"", b"end\n", b"last"]
    store.ingest("fake", {"app": "j"}, [1, 2, 3, 4, 5], entries)
    assert rows(store.read("fake", direction="forward")) == [
        (t, '{app="j"}', e) for t, e in zip([1, 2, 3, 4, 5], entries, strict=True)
    ]
    # a needle inside a continuation line finds the whole entry
    assert [r[2] for r in rows(store.read("fake", contains=["E.java:7"]))] == [trace]
    assert store.stats("fake").entries == 5


@pytest.mark.parametrize(
    "labels",
    [{}, {"1bad": "x"}, {"a": 1}, {"a": "\ud800"}],
)
def test_invalid_labels_raise_store_error(store: Store, labels: dict[str, object]) -> None:
    with pytest.raises(StoreError):
        store.ingest("fake", labels, [1], [b"x"])  # type: ignore[arg-type]


def test_tenant_ids_follow_loki() -> None:
    assert validate_tenant("acme-1_(x)*'!.") == "acme-1_(x)*'!."
    for bad in ["", ".", "..", "a/b", "a b", "x" * 151, "é"]:
        with pytest.raises(StoreError):
            validate_tenant(bad)
    assert DEFAULT_TENANT == "fake"


def test_tenants_are_isolated(store: Store, tmp_path: Path) -> None:
    store.ingest("alpha", {"app": "x"}, [1], [b"alpha line"])
    store.ingest("beta", {"app": "x"}, [1], [b"beta line"])
    assert [r[2] for r in rows(store.read("alpha"))] == [b"alpha line"]
    assert [r[2] for r in rows(store.read("beta"))] == [b"beta line"]
    assert rows(store.read("gamma")) == []  # unknown tenant: empty, like Loki
    assert store.streams("gamma") == [] and store.stats("gamma").entries == 0
    assert sorted(store.tenants()) == ["alpha", "beta"]
    assert (tmp_path / "store" / "tenants" / "alpha" / "manifest.json").is_file()
    with pytest.raises(StoreError):
        list(store.read("../beta"))


def test_labels_series_stats(store: Store) -> None:
    store.ingest("fake", {"app": "a", "env": "prod"}, [10, 20], [b"x1", b"x2"])
    store.ingest("fake", {"app": "b"}, [100], [b"y1"])
    assert store.label_names("fake") == ["app", "env"]
    assert store.label_names("fake", 50, 200) == ["app"]
    assert store.label_values("fake", "app") == ["a", "b"]
    assert store.label_values("fake", "app", matchers=[eq("env", "")]) == ["b"]
    assert store.series("fake", [[eq("app", "a")], [eq("app", "b")]]) == [
        {"app": "a", "env": "prod"},
        {"app": "b"},
    ]
    stats = store.stats("fake", [LabelMatcher("app", MatchOp.NE, "")])
    assert (stats.streams, stats.entries, stats.bytes) == (2, 3, 6)
    assert stats.chunks >= 2


def test_idempotent_reingest(store: Store) -> None:
    first = store.ingest("fake", {"a": "1"}, [1, 2], [b"x", b"y"], position=("t", 0, 0, 1))
    assert first.accepted == 2 and not first.duplicate
    again = store.ingest("fake", {"a": "1"}, [1, 2], [b"x", b"y"], position=("t", 0, 0, 1))
    assert again.duplicate and again.accepted == 0
    assert len(rows(store.read("fake"))) == 2
    other = store.ingest("fake", {"a": "1"}, [3], [b"z"], position=("t", 1, 0, 0))
    assert other.accepted == 1  # another partition has its own offsets
    with pytest.raises(StoreError, match="overlap"):
        store.ingest("fake", {"a": "1"}, [4], [b"w"], position=("t", 0, 1, 5))
    for bad in [("t", 0, 5, 4), ("t", 0, -1, 3), (1, 0, 0, 1), ("t", 0)]:
        with pytest.raises(StoreError):
            store.ingest("fake", {"a": "1"}, [4], [b"w"], position=bad)  # type: ignore[arg-type]
    assert store.ingest("fake", {"a": "1"}, [4], [b"w"], position=("t", 0, 7, 9)).accepted == 1
    # the record survives a restart
    reopened = Store(store.files.root)
    assert reopened.ingest("fake", {"a": "1"}, [4], [b"w"], position=("t", 0, 8, 9)).duplicate


def test_batch_ingest_groups_by_stream_and_counts_bad_rows(store: Store) -> None:
    ts_type = pa.timestamp("ns", tz="UTC")
    batch = pa.table(
        {
            "ts": pa.array([3, None, 1, 2, 5], pa.int64()).cast(ts_type),
            "labels": pa.array(
                ['{app="a"}', '{app="a"}', '{app= "a" }', "{bad", '{app="b"}'], pa.string()
            ).dictionary_encode(),
            "line": pa.array([b"a3", b"nots", b"a1", b"x", b"b5"], pa.binary()),
        }
    )
    report = store.ingest_batch("fake", batch, position=("topic", 2, 10, 14))
    assert report.accepted == 3 and report.streams == 2
    assert report.rejected == {"no_timestamp": 1, "invalid_labels": 1}
    assert [r[2] for r in rows(store.read("fake", direction="forward"))] == [b"a1", b"a3", b"b5"]
    assert store.ingest_batch("fake", batch, position=("topic", 2, 10, 14)).duplicate
    with pytest.raises(StoreError, match="lacks"):
        store.ingest_batch("fake", pa.table({"ts": [1]}))


def test_batch_of_records_schema(store: Store) -> None:
    """A LogBatch as logpipe.records builds it is accepted as is."""
    arrays = [
        pa.array([7, 8], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        pa.array(['{job="x"}'] * 2).dictionary_encode().cast(RAW_SCHEMA.field("labels").type),
        pa.array([b"l7", b"l8"]),
        pa.array(["-"] * 2).dictionary_encode().cast(RAW_SCHEMA.field("source").type),
        pa.array([0, 0], pa.int32()),
        pa.array([0, 3], pa.int64()),
        pa.array([1, 2], pa.int64()),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=RAW_SCHEMA)
    assert store.ingest_batch("fake", batch).accepted == 2


def count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = segfile.read_segment_file

    def counting(file: object, name: str, needle: str | None = None) -> object:
        opened.append(name)
        return real(file, name, needle)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "read_segment_file", counting)
    return opened


def test_only_candidate_segments_are_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, segment_bytes=1 << 20)
    for hour in range(4):
        for app in ("a", "b"):
            ts = np.arange(10) + hour * 1000
            lines = [f"{app} request {i} took {hour}ms".encode() for i in range(10)]
            store.ingest("fake", {"app": app}, ts, lines)
    store.ingest("fake", {"app": "a"}, [1500], [b"a special ERROR blk_-4242 happened"])
    opened = count_opens(monkeypatch)
    got = rows(store.read("fake", [eq("app", "a")], 1000, 2000))
    assert len(got) == 11 and len(opened) == 2  # a's segments of hour 1 and the special one
    opened.clear()
    assert len(rows(store.read("fake", [eq("app", "b")], limit=5))) == 5
    assert len(opened) == 1  # newest segment of b holds the 5 newest lines
    opened.clear()
    assert [r[2] for r in rows(store.read("fake", contains=["blk_-4242"]))] == [
        b"a special ERROR blk_-4242 happened"
    ]
    assert len(opened) == 1  # the content index rules out the 8 other segments
    opened.clear()
    assert rows(store.read("fake", contains=["nowhere-to-be-found"])) == []
    assert opened == []


def test_subtree_filesystem(tmp_path: Path) -> None:
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    store = Store("data", fs, segment_bytes=32)
    store.ingest("t1", {"app": "a"}, [2, 1, 3], [b"two", b"one", b"three " * 10])
    assert [r[2] for r in rows(store.read("t1", direction="forward"))] == [
        b"one",
        b"two",
        b"three " * 10,
    ]
    assert (tmp_path / "data" / "tenants" / "t1" / "manifest.json").is_file()
    assert store.tenants() == ["t1"]
    assert store.apply_retention("t1", max_bytes=0).lines_removed == 3
    assert rows(store.read("t1")) == []
    # a local store over the same directory reads what the wrapped one wrote
    store.ingest("t1", {"app": "a"}, [5], [b"five"])
    assert [r[2] for r in rows(Store(tmp_path / "data").read("t1"))] == [b"five"]


def test_retention_by_age_and_size(store: Store) -> None:
    for day in range(5):
        store.ingest("fake", {"app": "a"}, [day * 100, day * 100 + 50], [b"x", b"y"])
    store.ingest("other", {"app": "a"}, [0], [b"old"])
    report = store.apply_retention("fake", max_age_ns=250, now_ns=500)
    assert {reason for _, _, reason in report.removed} == {"age"}
    assert report.lines_removed == 4  # days 0 and 1 end before 250; day 2 ends at 250
    assert min(r[0] for r in rows(store.read("fake"))) == 200
    sizes = sorted(s.bytes for s in store.manifest("fake").segments)
    report = store.apply_retention(max_bytes=sum(sizes) - 1, now_ns=500)
    assert [(t, reason) for t, _, reason in report.removed] == [("fake", "size")]
    assert min(r[0] for r in rows(store.read("fake"))) == 300
    assert rows(store.read("other")) != []
    files = list((store.files.local_root or Path()).rglob("*.lpz"))
    assert len(files) == len(store.manifest("fake").segments) + 1


def test_corrupted_segment_gives_store_error(store: Store) -> None:
    store.ingest("fake", {"app": "a"}, [1, 2], [b"hello world", b"hello again"])
    (segment,) = store.manifest("fake").segments
    path = (store.files.local_root or Path()) / "tenants" / "fake" / segment.path
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF  # inside the last stream's payload (the footer is 20 + 8n bytes)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as err:
        list(store.read("fake"))
    assert segment.path in str(err.value) and "fake" in str(err.value)
    assert err.value.path == segment.path and isinstance(err.value, LogpipeError)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        list(store.read("fake"))


def test_damaged_manifest_gives_store_error(store: Store) -> None:
    store.ingest("fake", {"app": "a"}, [1], [b"x"])
    manifest = (store.files.local_root or Path()) / "tenants" / "fake" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"lines":1', b'"lines":-1'))
    with pytest.raises(StoreError, match="manifest is damaged"):
        Store(store.files.root).streams("fake")


def test_failed_manifest_write_leaves_no_trace(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ingest("fake", {"app": "a"}, [1], [b"kept"], position=("k", 0, 0, 0))

    def fail(rel: str, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.files, "write_atomic", fail)
    with pytest.raises(OSError):
        store.ingest("fake", {"app": "a"}, [2], [b"lost"], position=("k", 0, 1, 1))
    monkeypatch.undo()
    assert len(list((store.files.local_root or Path()).rglob("*.lpz"))) == 1
    assert [r[2] for r in rows(store.read("fake"))] == [b"kept"]
    # the range was not recorded, so the redelivery is stored
    assert store.ingest("fake", {"app": "a"}, [2], [b"lost"], position=("k", 0, 1, 1)).accepted


_CRASH = """
import os, sys
from logpipe.store import Store
store = Store(sys.argv[1], segment_bytes=16)
store.ingest("fake", {"app": "a"}, [1], [b"committed"], position=("k", 0, 0, 0))
store.files.write_atomic = lambda rel, data: os._exit(9)  # die before the manifest lands
store.ingest("fake", {"app": "a"}, [2, 3], [b"orphan one", b"orphan two"],
             position=("k", 0, 1, 2))
"""


def test_crash_between_segment_and_manifest(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, str(root)], cwd=REPO, check=False, capture_output=True
    )
    assert proc.returncode == 9, proc.stderr.decode()
    assert len(list(root.rglob("*.lpz"))) == 3  # one committed, two orphans
    reader = Store(root)
    assert [r[2] for r in rows(reader.read("fake"))] == [b"committed"]  # orphans unseen
    assert len(list(root.rglob("*.lpz"))) == 3  # readers never delete
    writer = Store(root)
    report = writer.ingest("fake", {"app": "a"}, [2, 3], [b"one", b"two"], position=("k", 0, 1, 2))
    assert report.accepted == 2 and not report.duplicate
    assert len(list(root.rglob("*.lpz"))) == 2  # orphans removed, not adopted
    assert [r[2] for r in rows(writer.read("fake", direction="forward"))] == [
        b"committed",
        b"one",
        b"two",
    ]


def test_read_arguments_are_checked(store: Store) -> None:
    with pytest.raises(StoreError):
        list(store.read("fake", direction="sideways"))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        list(store.read("fake", limit=-1))
    with pytest.raises(StoreError):
        store.ingest("fake", {"a": "1"}, [1, 2], [b"x"])
    with pytest.raises(StoreError):
        Store(store.files.root, segment_bytes=0)
