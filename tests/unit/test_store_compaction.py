"""Compaction on a real store: identical query results, indexes kept, retention respected,
and a crash or a race at any step loses nothing and duplicates nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from logpipe.labels import LabelMatcher, MatchOp
from logpipe.logql.engine import Engine
from logpipe.logql.results import to_loki_json
from logpipe.store import SegmentEntry, Store, StoreError, segfile
from logpipe.store import store as store_module
from logpipe.store.compaction import CompactionJob, plan_compaction
from logpipe.store.index import may_contain
from tests.conftest import REPO

S = 1_000_000_000
STREAMS = (
    {"app": "api", "env": "prod"},
    {"app": "db", "env": "prod"},
    {"app": "api", "env": "dev"},
)


def batches(
    ingests: int, seed: int = 7
) -> Iterable[tuple[dict[str, str], np.ndarray, list[bytes]]]:
    """Small ingests (a flush each) over three streams, with timestamps that tie across
    and within ingests, multi-line entries, bytes that are not UTF-8 and rare ids."""
    rng = np.random.default_rng(seed)
    for k in range(ingests):
        labels = STREAMS[k % len(STREAMS)]
        n = int(rng.integers(3, 12))
        ts = (rng.integers(0, 40, n) * S).astype(np.int64)
        lines = []
        for i in range(n):
            status = int(rng.choice([200, 200, 404, 500]))
            line = f"{labels['app']} GET /item/{rng.integers(0, 50)} status={status} req={k}-{i}"
            raw = line.encode()
            if i == 2:
                raw += b"\n\tat x.Y.z(Y.java:7)"  # a stack trace entry
            if i == 3:
                raw += b" \xff\xfe"
            lines.append(raw)
        yield labels, ts, lines


def fill(store: Store, ingests: int = 45) -> None:
    for labels, ts, lines in batches(ingests):
        store.ingest("fake", labels, ts, lines)


def table_bytes(batch_iter: Iterable[pa.RecordBatch]) -> bytes:
    """A read's rows as one Arrow IPC stream (batch boundaries aside, byte for byte)."""
    batches_ = list(batch_iter)
    if not batches_:
        return b""
    table = pa.Table.from_batches(batches_).combine_chunks()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def answers(store: Store) -> dict[str, bytes]:
    """What a battery of reads and LogQL queries returns, serialised."""
    api = [LabelMatcher("app", MatchOp.EQ, "api")]
    out: dict[str, bytes] = {}
    for direction in ("forward", "backward"):
        for limit in (None, 13):
            out[f"all {direction} {limit}"] = table_bytes(
                store.read("fake", direction=direction, limit=limit)
            )
        out[f"range {direction}"] = table_bytes(
            store.read("fake", api, 10 * S, 30 * S, direction=direction)
        )
        for needle in ("=500", "req=4-", "status=404 req=1", "Y.java:7", "absent needle!"):
            out[f"{needle} {direction}"] = table_bytes(
                store.read("fake", contains=[needle], direction=direction)
            )
    engine = Engine(store)
    for query in ('{env="prod"}', '{app="api"} |= "status=500"', '{app=~".+"} | logfmt'):
        for direction in ("forward", "backward"):
            result = engine.query_range(query, start_ns=0, end_ns=41 * S, limit=5000,
                                        direction=direction)  # fmt: skip
            out[f"{query} {direction}"] = json.dumps(to_loki_json(result)).encode()
    metric = 'sum by (app) (count_over_time({env=~".+"} |= "GET" [5s]))'
    result = engine.query_range(metric, start_ns=0, end_ns=41 * S, step_ns=S)
    out[metric] = json.dumps(to_loki_json(result)).encode()
    stats = store.stats("fake")
    out["stats"] = f"{stats.streams} {stats.entries} {stats.bytes}".encode()
    out["series"] = json.dumps(store.series("fake", [[]])).encode()
    return out


def lines_once(store: Store) -> list[bytes]:
    """The tenant's lines, forward, checking that none is stored twice (the generated
    lines are all distinct) and that the files on disk are exactly those listed."""
    lines = [x for b in store.read("fake", direction="forward") for x in b["line"].to_pylist()]
    assert len(lines) == len(set(lines))
    root = store.files.local_root or Path()
    on_disk = {p.relative_to(root / "tenants/fake").as_posix() for p in root.rglob("*.lpz")}
    assert on_disk == {s.path for s in store.manifest("fake").segments}
    return lines


@pytest.fixture
def filled(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store", segment_bytes=1024)
    fill(store)
    return store


def test_compaction_gives_byte_identical_query_results(filled: Store, tmp_path: Path) -> None:
    before = answers(filled)
    paths_before = {s.path for s in filled.manifest("fake").segments}
    report = filled.compact()
    after = filled.manifest("fake").segments
    merged = [s for s in after if s.path not in paths_before]
    assert report.merges == len(merged) >= 3
    assert report.segments_in - report.merges == len(paths_before) - len(after)
    assert report.lines == sum(s.lines for s in merged)
    assert len(after) < len(paths_before) / 2
    assert answers(filled) == before
    # a second store of the same ingests, compacted between them, answers the same too
    other = Store(tmp_path / "other", segment_bytes=1024)
    for k, (labels, ts, lines) in enumerate(batches(45)):
        other.ingest("fake", labels, ts, lines)
        if k % 10 == 9:
            other.compact(target_bytes=700)
    assert answers(other) == before
    for store in (filled, other):
        lines_once(store)


def test_a_merged_segment_replaces_a_run_of_one_stream(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = filled.manifest("fake")
    planned: list[CompactionJob] = []

    def recording(*args: object, **kwargs: object) -> list[CompactionJob]:
        jobs = plan_compaction(*args, **kwargs)  # type: ignore[arg-type]
        planned.extend(jobs)
        return jobs

    monkeypatch.setattr(store_module, "plan_compaction", recording)
    filled.compact()
    after = {s.seq: s for s in filled.manifest("fake").segments}
    assert planned
    for job in planned:
        first = job.inputs[0]
        stream = sorted((s for s in before.segments if s.stream == first.stream),
                        key=lambda s: s.seq)  # fmt: skip
        at = stream.index(first)
        assert list(job.inputs) == stream[at : at + len(job.inputs)]  # adjacent in its stream
        merged = after[first.seq]  # the merge took its first input's seq
        assert (merged.stream, merged.labels) == (first.stream, first.labels)
        assert merged.lines == sum(s.lines for s in job.inputs)
        assert merged.raw_bytes == sum(s.raw_bytes for s in job.inputs)
        assert merged.min_ts == min(s.min_ts for s in job.inputs)
        assert merged.max_ts == max(s.max_ts for s in job.inputs)
        assert merged.raw_bytes + merged.lines <= filled.segment_bytes
        assert not any(s.seq in after for s in job.inputs[1:])
    assert filled.manifest("fake").next_seq == before.next_seq
    assert filled.manifest("fake").offsets == before.offsets


def test_compacted_segments_keep_their_pruning_indexes(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled.ingest("fake", STREAMS[1], [20 * S], [b"db rare-needle-0xC0FFEE happened"])
    filled.compact()
    merged = [s for s in filled.manifest("fake").segments if s.lines > 12]
    assert merged
    for s in merged:
        assert may_contain(s.index, "GET /item/")
        assert not may_contain(s.index, "zzzzzz")  # the trigram filter still prunes
        with (filled.files.local_root or Path()).joinpath("tenants/fake", s.path).open("rb") as f:
            assert segfile.may_hold_needles(f, s.path, ["GET /item/"])
    opened: list[str] = []
    real = segfile.read_segment_file

    def counting(file: object, name: str, needle: str | None = None) -> object:
        opened.append(name)
        return real(file, name, needle)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "read_segment_file", counting)
    got = list(filled.read("fake", contains=["rare-needle-0xC0FFEE"]))
    assert sum(b.num_rows for b in got) == 1
    assert len(opened) == 1  # the 8-gram filters of every other segment ruled it out


def test_compaction_respects_span_and_leaves_expired_segments_to_retention(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, segment_bytes=4096)
    for minute in range(10):
        ts = np.array([minute * 60 * S + i * S for i in range(5)], dtype=np.int64)
        store.ingest("fake", {"app": "a"}, ts, [f"m{minute} line {i}".encode() for i in range(5)])
    report = store.compact(max_span_ns=150 * S, expired_before_ns=240 * S)
    segments = sorted(store.manifest("fake").segments, key=lambda s: s.seq)
    assert report.merges >= 2
    assert all(s.max_ts - s.min_ts < 150 * S for s in segments)
    assert [s.lines for s in segments if s.max_ts < 240 * S] == [5, 5, 5, 5]  # untouched
    assert [(s.min_ts // S, s.max_ts // S) for s in segments if s.lines > 5] == [
        (240, 364),  # minutes 4 to 6: a fourth would span 150 s or more
        (420, 544),
    ]
    retained = store.apply_retention(max_age_ns=300 * S, now_ns=600 * S)
    assert retained.lines_removed == 20  # minutes 0 to 3
    # minute 4 outlives the retention period inside the merge, by less than the span
    assert min(s.min_ts for s in store.manifest("fake").segments) == 240 * S
    assert store.apply_retention(max_age_ns=300 * S, now_ns=665 * S).lines_removed == 15


def test_a_failed_manifest_swap_keeps_the_inputs_and_leaves_no_file(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = answers(filled)
    files_before = sorted((filled.files.local_root or Path()).rglob("*.lpz"))

    def full_disk(rel: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(filled.files, "write_atomic", full_disk)
    with pytest.raises(OSError, match="No space"):
        filled.compact()
    monkeypatch.undo()
    assert sorted((filled.files.local_root or Path()).rglob("*.lpz")) == files_before
    assert answers(filled) == before
    assert filled.compact().merges >= 3  # and it works once the disk has room


_CRASH = """
import os, sys
from logpipe.store import Store
store = Store(sys.argv[1], segment_bytes=1024)
if sys.argv[2] == "before-swap":  # the merged file is written, the manifest not yet
    store.files.write_atomic = lambda rel, data: os._exit(9)
else:  # the manifest lists the merged segment; the inputs are not deleted yet
    store.files.delete = lambda rel: os._exit(9)
store.compact()
"""


@pytest.mark.parametrize("step", ["before-swap", "after-swap"])
def test_a_crash_between_the_steps_loses_and_duplicates_nothing(filled: Store, step: str) -> None:
    root = filled.files.local_root or Path()
    before = answers(filled)
    listed_before = {s.path for s in filled.manifest("fake").segments}
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(root), step], cwd=REPO,
                          check=False, capture_output=True)  # fmt: skip
    assert proc.returncode == 9, proc.stderr.decode()
    on_disk = {p.relative_to(root / "tenants/fake").as_posix() for p in root.rglob("*.lpz")}
    reader = Store(root)
    listed = {s.path for s in reader.manifest("fake").segments}
    if step == "before-swap":
        assert listed == listed_before and len(on_disk) == len(listed) + 1  # one orphan
    else:
        assert listed != listed_before and on_disk == listed | listed_before  # old ones orphans
    assert answers(reader) == before  # readers see the inputs or the merge, never both
    writer = Store(root, segment_bytes=1024)
    writer.compact()  # a writer removes the orphans first, then goes on
    on_disk = {p.relative_to(root / "tenants/fake").as_posix() for p in root.rglob("*.lpz")}
    assert on_disk == {s.path for s in writer.manifest("fake").segments}
    assert answers(writer) == before


def steady(store: Store, flushes: int) -> None:
    """``flushes`` flushes of one stream, five lines a second apart each, in time order."""
    for k in range(flushes):
        ts = np.arange(5, dtype=np.int64) * S // 5 + k * S
        store.ingest("fake", {"app": "a"}, ts, [f"flush {k} line {i}".encode() for i in range(5)])


def during_merge_write(
    store: Store, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]
) -> None:
    """Run ``meanwhile`` after compaction wrote its first merged file, before the swap."""
    real = store._write_segment
    calls: list[int] = []

    def write(*args: object, **kwargs: object) -> SegmentEntry:
        entry = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 1:
            meanwhile()
        return entry

    monkeypatch.setattr(store, "_write_segment", write)


def test_retention_taking_an_input_meanwhile_cancels_that_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, segment_bytes=1024)
    steady(store, 12)

    def expire() -> None:  # flush 0, an input of the first merge, expires
        store.apply_retention(max_age_ns=10 * S, now_ns=11 * S)

    during_merge_write(store, monkeypatch, expire)
    report = store.compact()
    assert report.skipped == 1 and report.problems == []
    lines = lines_once(store)
    assert lines == [f"flush {k} line {i}".encode() for k in range(1, 12) for i in range(5)]
    monkeypatch.undo()
    assert store.compact().merges >= 1  # the next run merges what is left
    assert lines_once(store) == lines


def test_a_flush_stored_meanwhile_survives_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path, segment_bytes=1024)
    steady(store, 8)

    def flush() -> None:
        store.ingest("fake", {"app": "a"}, [3 * S], [b"late"], position=("k", 0, 0, 0))

    during_merge_write(store, monkeypatch, flush)
    assert store.compact().merges >= 1
    lines = lines_once(store)
    assert len(lines) == 41 and b"late" in lines
    assert store.manifest("fake").offsets == {("k", 0): 0}
    # the late line's segment came after the merged ones: it sorts after their ties
    at_3s = [x for b in store.read("fake", [], 3 * S, 3 * S + 1, direction="forward")
             for x in b["line"].to_pylist()]  # fmt: skip
    assert at_3s == [b"flush 3 line 0", b"late"]


def test_deleting_inputs_waits_for_queries_that_began_before(tmp_path: Path) -> None:
    store = Store(tmp_path, segment_bytes=1024, delete_delay_s=0.3)
    fill(store, 12)
    expected = table_bytes(store.read("fake", direction="forward"))
    started = store.read("fake", direction="forward")  # planned on the old manifest
    assert store.compact().merges >= 1
    assert table_bytes(started) == expected  # its segments are still there
    files = len(list(tmp_path.rglob("*.lpz")))
    assert files > len(store.manifest("fake").segments)
    assert store.collect_garbage() == 0  # not yet due
    time.sleep(0.35)
    assert store.collect_garbage() == files - len(store.manifest("fake").segments)
    assert len(list(tmp_path.rglob("*.lpz"))) == len(store.manifest("fake").segments)
    immediate = Store(tmp_path / "now", segment_bytes=1024)
    fill(immediate, 12)
    started = immediate.read("fake")
    immediate.compact()
    with pytest.raises(StoreError, match="missing"):  # why the delay exists
        list(started)


def test_compact_arguments_are_checked(filled: Store) -> None:
    with pytest.raises(StoreError, match="target_bytes"):
        filled.compact(target_bytes=0)
    assert filled.compact(max_jobs=1).merges == 1
    assert filled.compact("nobody").merges == 0
