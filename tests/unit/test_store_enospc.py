"""ENOSPC at every I/O step of a store write: the write fails whole, leaves no file behind,
and succeeds exactly once when retried.

Why a sweep over injected failures as well as the real full tmpfs of
tests/integration/test_disk_full_tmpfs.py: a tmpfs only ever fails ``write``; real disks
also fail ``fsync`` (delayed allocation) and, on some file systems, ``rename``. Each step of
one ingest (every buffered write and flush of a segment or the manifest, every fsync, every
rename) is made to fail in turn.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from logpipe.store import Store

TENANT = "fake"
LABELS = {"app": "a"}


class _Faults:
    """Counts fallible I/O steps; raises ENOSPC at step ``fail_at`` (None: never)."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.fail_at: int | None = None

    def step(self, what: str) -> None:
        self.steps.append(what)
        if self.fail_at is not None and len(self.steps) - 1 == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device (injected)", what)


class _File:
    """A file object whose writes and flushes go through :class:`_Faults`."""

    def __init__(self, inner: Any, faults: _Faults) -> None:
        self._inner = inner
        self._faults = faults

    def write(self, data: bytes) -> int:
        self._faults.step("write")
        return int(self._inner.write(data))

    def flush(self) -> None:
        self._faults.step("flush")
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()


@contextmanager
def _inject(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Faults]:
    faults = _Faults()
    real_fdopen, real_fsync, real_replace = os.fdopen, os.fsync, os.replace

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> _File:
        return _File(real_fdopen(fd, *args, **kwargs), faults)

    def fsync(fd: int) -> None:
        faults.step("fsync")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        faults.step("rename")
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", fdopen)
        m.setattr(os, "fsync", fsync)
        m.setattr(os, "replace", replace)
        yield faults


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _lines(store: Store) -> list[bytes]:
    return [x for b in store.read(TENANT, direction="forward") for x in b["line"].to_pylist()]


def _first(store: Store) -> None:
    store.ingest(TENANT, LABELS, [1, 2], [b"one", b"two"], position=("t", 0, 0, 1))


def _second(store: Store) -> Callable[[], object]:
    lines = [b"line %03d " % i + b"x" * 40 for i in range(60)]  # several segments
    return lambda: store.ingest(
        TENANT, LABELS, list(range(10, 70)), lines, position=("t", 0, 2, 61)
    )


def test_enospc_at_every_step_of_an_ingest_fails_it_whole_and_a_retry_stores_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Store(tmp_path / "probe", segment_bytes=1024)
    _first(probe)
    with _inject(monkeypatch) as faults:
        _second(probe)()
    steps = list(faults.steps)
    assert {"write", "flush", "fsync", "rename"} <= set(steps), steps
    want = _lines(probe)
    assert len(want) == 62

    for at, what in enumerate(steps):
        root = tmp_path / f"at-{at}"
        store = Store(root, segment_bytes=1024)
        _first(store)
        before = _files(root)
        with _inject(monkeypatch) as faults:
            faults.fail_at = at
            ingest = _second(store)
            try:
                ingest()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                failed = True
            else:
                failed = False
        where = f"ENOSPC at step {at} ({what})"
        if failed:
            # nothing half-done: the same files as before, the old manifest, no temp files
            assert _files(root) == before, where
            assert Store(root).manifest(TENANT).offsets == {("t", 0): 1}, where
            assert _lines(Store(root)) == [b"one", b"two"], where
            ingest()  # space is back: the retry stores it
        else:
            # only a directory fsync may fail without failing the write (some file
            # systems refuse them); the data is then in place all the same
            assert what == "fsync", where
        assert _lines(Store(root)) == want, where
        assert Store(root).manifest(TENANT).offsets == {("t", 0): 61}, where
        ingest()  # a redelivery after the success is a no-op
        assert _lines(Store(root)) == want, where
