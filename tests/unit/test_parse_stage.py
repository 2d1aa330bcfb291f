"""The parse stage: template columns, ids that survive a restart, checkpoints before acks,
bounded state, and the store using the stage's templates without losing a byte."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from logpipe.errors import PipelineError
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.pipeline import PARSE_COLUMNS, BatchLimits, ParseStage, Pipeline, StoreSink
from logpipe.records import RAW_SCHEMA, raw_batch
from logpipe.store import Store
from tests.unit.test_pipeline_runner import FakeSink, FakeSource


def _lines(seed: int, n: int) -> list[bytes]:
    """Lines of a few events with random values (addresses, sizes, hosts, durations)."""
    rng = random.Random(seed)
    events = [
        "session opened from 10.0.{a}.{b} port {n}",
        "sent {n} bytes to host-{a} in {d}ms",
        "job {n} finished with status OK",
        "cache miss for key item:{n}",
    ]
    out = []
    for _ in range(n):
        e = rng.choice(events)
        line = e.format(a=rng.randrange(256), b=rng.randrange(256), n=rng.randrange(10**6),
                        d=rng.randrange(999))  # fmt: skip
        out.append(line.encode())
    return out


def test_adds_template_columns_whose_params_rebuild_the_line() -> None:
    stage = ParseStage()
    lines = _lines(1, 400)
    batch = stage.process(raw_batch(lines, source="t"))
    assert batch.schema.names == [*RAW_SCHEMA.names, *(f.name for f in PARSE_COLUMNS)]
    ids = batch.column("template_id").to_pylist()
    templates = batch.column("template").cast(pa.string()).to_pylist()
    params = batch.column("params").to_pylist()
    assert len(set(ids)) == 4  # one template per event, whatever the values
    for line, template, values in zip(lines, templates, params, strict=True):
        assert template is not None and "<*>" in template
        pieces = template.split("<*>")
        assert len(values) == len(pieces) - 1
        rebuilt = pieces[0] + "".join(v + p for v, p in zip(values, pieces[1:], strict=True))
        assert rebuilt == line.decode()
    # the same event always has the same id, within and across batches
    again = stage.process(raw_batch(lines[:50], source="t"))
    assert again.column("template_id").to_pylist() == ids[:50]
    no_params = ParseStage(params=False).process(raw_batch(lines[:3], source="t"))
    assert no_params.column("params").to_pylist() == [[], [], []]


def test_non_utf8_and_empty_lines_are_data_not_errors() -> None:
    batch = ParseStage().process(raw_batch([b"\xff\xfe bad 12", b"", b"ok 5"], source="t"))
    assert batch.num_rows == 3
    assert batch.column("line").to_pylist()[0] == b"\xff\xfe bad 12"  # the raw bytes stay
    assert None not in batch.column("template_id").to_pylist()


def test_ids_continue_after_a_restart_from_the_checkpoint(tmp_path: Path) -> None:
    state = tmp_path / "templates.json"
    lines = _lines(2, 300)
    first = ParseStage.resume(state)
    ids = first.process(raw_batch(lines, source="t")).column("template_id").to_pylist()
    first.checkpoint()
    assert json.loads(state.read_text())["format"] == "logpipe-miner"
    mtime = state.stat().st_mtime_ns
    first.process(raw_batch(lines[:10], source="t"))  # known templates only
    first.checkpoint()
    assert state.stat().st_mtime_ns == mtime  # nothing changed, nothing written

    second = ParseStage.resume(state)  # as after kill -9: only the checkpoint survives
    later = second.process(raw_batch(lines[::-1], source="t")).column("template_id")
    assert later.to_pylist() == ids[::-1]
    new = second.process(raw_batch([b"a brand new event 7"], source="t"))
    assert new.column("template_id")[0].as_py() == max(ids) + 1


def test_a_damaged_state_is_moved_aside_and_mining_starts_afresh(tmp_path: Path) -> None:
    state = tmp_path / "templates.json"
    state.write_text('{"format": "logpipe-miner", "version": 999}')
    stage = ParseStage.resume(state, max_clusters=5)
    assert (tmp_path / "templates.json.damaged").is_file() and not state.exists()
    assert stage.miner.config.max_clusters == 5
    stage.process(raw_batch([b"x 1"], source="t"))
    stage.checkpoint()
    assert TemplateMiner.load(state).clusters()[0].template == "x <*>"


def test_state_is_bounded_evicted_templates_are_null() -> None:
    miner = TemplateMiner(MinerConfig(max_clusters=3))
    stage = ParseStage(miner)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    lines = [f"{w} {w} event {i}".encode() for i, w in enumerate(words)]
    batch = stage.process(raw_batch(lines, source="t"))
    assert len(miner.clusters()) == 3
    templates = batch.column("template").cast(pa.string()).to_pylist()
    assert templates[:3] == [None, None, None]
    assert templates[3:] == [f"{w} {w} event <*>" for w in words[3:]]


class _FullDiskStage(ParseStage):
    """Its first ``fail`` checkpoints find the disk full."""

    def __init__(self, state: Path, fail: int) -> None:
        super().__init__(state_path=state)
        self.fail = fail
        self.calls = 0

    def checkpoint(self) -> None:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise OSError(28, "No space left on device", "templates.json")
        super().checkpoint()


def test_runner_checkpoints_before_acking_and_holds_acks_while_it_fails(tmp_path: Path) -> None:
    source, sink = FakeSource(60, per_chunk=20), FakeSink()
    stage = _FullDiskStage(tmp_path / "templates.json", fail=3)
    pipe = Pipeline([source], [stage], [sink], limits=BatchLimits(max_lines=20, max_age_s=0.01))
    pipe.start()
    deadline = time.monotonic() + 10
    while stage.fail:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # written, but not acknowledged while the state could not be saved
    assert source.acked == {} and sink.lines
    assert any("stage parse" in r for r in pipe.health.snapshot().reasons)
    while source.acked.get(("t", 0)) != 60:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pipe.stop()
    assert pipe.join(10) and pipe.error is None
    assert (tmp_path / "templates.json").is_file()
    text = pipe.metrics.exposition().decode()
    assert 'logpipe_stage_errors_total{stage="parse"} 3.0' in text
    written = [line for lines in sink.lines.values() for line in lines]
    assert written == [f"line {i}".encode() for i in range(60)]


def test_a_state_that_never_saves_fails_the_drain(tmp_path: Path) -> None:
    source, sink = FakeSource(20, per_chunk=20), FakeSink()
    stage = _FullDiskStage(tmp_path / "templates.json", fail=10**6)
    pipe = Pipeline([source], [stage], [sink], limits=BatchLimits(max_age_s=0.01),
                    drain_timeout_s=0.5)  # fmt: skip
    pipe.start()
    while not stage.calls:
        time.sleep(0.01)
    pipe.stop()
    assert pipe.join(15)
    assert isinstance(pipe.error, PipelineError) and "stage parse kept failing" in str(pipe.error)
    assert source.committed == {}


@pytest.mark.parametrize("hint", ["stage", "wrong", "null", "wrong-masks"])
def test_the_store_uses_given_templates_and_stays_lossless(tmp_path: Path, hint: str) -> None:
    lines = [*_lines(3, 500), b"\xff not utf-8 9", b"trailing space 1 ", b"tab\tsep 2"]
    n = len(lines)
    rng = np.random.default_rng(4)
    ts = 1_700_000_000_000_000_000 + rng.integers(0, 10**9, n)  # out of order
    batch = raw_batch(lines, source="t", labels='{app="a"}', ts=ts)
    parsed = ParseStage().process(batch)
    table = pa.Table.from_batches([parsed])
    if hint == "wrong":
        wrong = pa.array(["nothing <*> like it"] * n, pa.string())
        table = table.set_column(table.schema.get_field_index("template"), "template", wrong)
    elif hint == "null":
        nulls = pa.nulls(n, pa.string())
        table = table.set_column(table.schema.get_field_index("template"), "template", nulls)
    elif hint == "wrong-masks":  # layouts read from the wrong text: still lossless
        masks = pa.array(["a  b\tc"] * n, pa.string()).dictionary_encode()
        table = table.set_column(table.schema.get_field_index("premasked"), "premasked", masks)
    store = Store(tmp_path, segment_bytes=4096)
    StoreSink(store).write(("t", 0), table, None)
    back = [x for b in store.read("fake", direction="forward") for x in b["line"].to_pylist()]
    order = np.argsort(ts, kind="stable")
    assert back == [lines[i] for i in order.tolist()]
    if hint == "stage":  # the templates served: next to nothing was stored verbatim
        plain = Store(tmp_path / "plain", segment_bytes=4096)
        StoreSink(plain).write(("t", 0), pa.Table.from_batches([batch]), None)
        ours = sum(s.bytes for s in store.manifest("fake").segments)
        mined = sum(s.bytes for s in plain.manifest("fake").segments)
        assert ours <= mined * 1.1, (ours, mined)
