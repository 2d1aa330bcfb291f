"""The archive commands through the real CLI: round trips, grep, cat, info, damage."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from logpipe.cli import main
from tests.conftest import REPO

SAMPLE = REPO / "samples" / "shop" / "webshop.log"


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "logpipe.cli", *args], capture_output=True, env=env, check=False
    )


def _awkward_bytes() -> bytes:
    rng = random.Random(7)
    lines = [
        b"2024-01-01 10:00:00,001 INFO  [main] app: started in 12 ms\r",
        b"plain text line",
        b"\xff\xfe invalid utf-8 \xc3",
        b"tabs\tand  double  spaces   and <*> placeholders <*>",
        b"",
        b"\x00\x01 control bytes \x1b[31mred\x1b[0m",
        b"x" * 200_000,  # a huge line
    ]
    lines += [
        f"user u{rng.randrange(50)} took {rng.randrange(10**6)} ms".encode() for _ in range(300)
    ]
    return b"\n".join(lines)  # no final newline


def test_round_trip_and_tools(tmp_path: Path) -> None:
    data = _awkward_bytes()
    src = tmp_path / "in.log"
    src.write_bytes(data)
    archive = tmp_path / "in.lpz"
    assert (
        main(["compress", str(src), "-o", str(archive), "--no-progress", "--segment-mb", "0.05"])
        == 0
    )
    back = tmp_path / "back.log"
    assert main(["decompress", str(archive), "-o", str(back)]) == 0
    assert back.read_bytes() == data
    details = json.loads(_run("archive", "info", str(archive), "--json").stdout)
    assert len(details["segments"]) > 1 and details["input_bytes"] == len(data)
    grep = _run("grep", "-c", "took 5", str(archive))
    expected = sum(1 for line in data.split(b"\n") if b"took 5" in line)
    assert int(grep.stdout) == expected
    cat = _run("cat", str(archive), "--lines", "2:3")
    assert cat.stdout == b"\n".join(data.split(b"\n")[1:3]) + b"\n"


def test_refuses_to_overwrite_and_reads_gzip(tmp_path: Path) -> None:
    src = tmp_path / "a.log.gz"
    src.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    archive = tmp_path / "a.lpz"
    assert main(["compress", str(src), "-o", str(archive), "--no-progress"]) == 0
    assert main(["compress", str(src), "-o", str(archive), "--no-progress"]) == 2
    out = _run("decompress", str(archive), "-o", "-")
    assert out.returncode == 0 and out.stdout == SAMPLE.read_bytes()


def test_damaged_archive_is_a_clear_error_and_salvage_recovers(tmp_path: Path) -> None:
    src = tmp_path / "big.log"
    src.write_bytes(SAMPLE.read_bytes() * 3)
    archive = tmp_path / "big.lpz"
    assert (
        main(["compress", str(src), "-o", str(archive), "--no-progress", "--segment-mb", "0.2"])
        == 0
    )
    segments = json.loads(_run("archive", "info", str(archive), "--json").stdout)["segments"]
    assert len(segments) >= 3
    raw = bytearray(archive.read_bytes())
    middle = segments[1]
    raw[middle["offset"] + middle["bytes_on_disk"] // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    bad = _run("decompress", str(archive), "-o", str(tmp_path / "x.log"))
    err = bad.stderr.decode()
    assert bad.returncode == 1 and "Traceback" not in err
    assert "segment 1" in err and "byte" in err
    assert not (tmp_path / "x.log").exists()  # no half-written output
    salvaged = _run("decompress", str(archive), "--salvage", "-o", str(tmp_path / "s.log"))
    assert salvaged.returncode == 0
    got = (tmp_path / "s.log").read_bytes()
    original = src.read_bytes()
    assert (
        got
        == original[: segments[1]["offset"] * 0 + segments[0]["input_bytes"]]
        + original[segments[0]["input_bytes"] + segments[1]["input_bytes"] :]
    )


def test_truncated_archive_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "t.lpz"
    assert main(["compress", str(SAMPLE), "-o", str(archive), "--no-progress"]) == 0
    data = archive.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 3):
        archive.write_bytes(data[:cut])
        result = _run("decompress", str(archive), "-o", "-")
        err = result.stderr.decode()
        assert "Traceback" not in err
        if result.returncode == 0:  # only the index at the end was cut: nothing is lost
            assert result.stdout == SAMPLE.read_bytes() and cut > len(data) // 2
        else:
            assert result.returncode == 1 and "byte" in err, err


@pytest.mark.data
def test_every_shared_file_round_trips(shared_data: Path, tmp_path: Path) -> None:
    files = sorted(p for p in shared_data.rglob("*") if p.is_file())
    assert files
    for path in files:
        archive = tmp_path / (path.name + ".lpz")
        back = tmp_path / (path.name + ".back")
        assert main(["compress", str(path), "-o", str(archive), "--no-progress", "--force"]) == 0
        assert main(["decompress", str(archive), "-o", str(back), "--force"]) == 0
        assert back.read_bytes() == path.read_bytes(), path
        archive.unlink()
        back.unlink()


def test_a_failed_round_trip_check_stores_the_segment_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logpipe.archive import api, codec

    monkeypatch.setattr(codec, "segment_is_exact", lambda *args: False)
    archive = tmp_path / "v.lpz"
    report = api.compress([str(SAMPLE)], archive)
    assert report.verbatim_lines == report.lines > 0
    back = tmp_path / "v.log"
    with back.open("wb") as out:
        api.decompress(archive, out)
    assert back.read_bytes() == SAMPLE.read_bytes()
