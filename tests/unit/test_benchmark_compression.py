"""The compression benchmark's plumbing on tiny generated inputs (no shared data).

The baselines really run; the logpipe CLI is replaced by a small script that stores its
input with gzip, so compress/decompress/grep timing, round-trip checks and failure reporting
are tested without the real archive code.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from benchmarks import compression as bench
from benchmarks import parsing

FAKE_CLI = """
import gzip, sys
MODE = {mode!r}
args = sys.argv[1:]
if args == ["--version"]:
    print("fake 0")
    sys.exit(0)
cmd = args[0]
if cmd == "compress":
    if MODE == "no-compress":
        sys.exit("Error: No such command 'compress'.")
    src, out = args[1], args[3]
    with open(src, "rb") as f, open(out, "wb") as g:
        g.write(gzip.compress(f.read()))
elif cmd == "decompress":
    src, out = args[1], args[3]
    with open(src, "rb") as f:
        data = gzip.decompress(f.read())
    if MODE == "lossy":
        data = data.replace(b"\\r", b"")
    if out == "-" and MODE == "no-stdout":
        sys.exit("Error: -o - is not supported")
    if out == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(out, "wb") as g:
            g.write(data)
elif cmd == "grep":
    token, src = args[1].encode(), args[2]
    with open(src, "rb") as f:
        lines = gzip.decompress(f.read()).split(b"\\n")
    hits = [ln + b"\\n" for ln in lines if token in ln]
    if MODE == "grep-drops":
        hits = hits[1:]
    sys.stdout.buffer.write(b"".join(hits))
else:
    sys.exit(f"unknown command {{cmd}}")
"""


def fake_cli(tmp_path: Path, mode: str = "ok") -> list[str]:
    script = tmp_path / f"fake_logpipe_{mode.replace('-', '_')}.py"
    script.write_text(FAKE_CLI.format(mode=mode), encoding="utf-8")
    return [sys.executable, str(script)]


RARE = "disk fault on node7abc at 42"


def _log_text(n: int = 300) -> bytes:
    lines = []
    for i in range(n):
        lines.append(f"2024-01-01 10:00:{i % 60:02d} INFO session {i % 7} opened for alice\r\n")
        if i == 150:
            lines.append(f"2024-01-01 10:02:30 ERROR {RARE}\r\n")
    return "".join(lines).encode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "Foo_301.log").write_bytes(_log_text())
    for system, text in (("Bar", b"bar INFO one\nbar WARN twoXYZ"), ("Baz", b"baz INFO three\n")):
        (root / "loghub-2k" / system).mkdir(parents=True)
        (root / "loghub-2k" / system / f"{system}_2k.log").write_bytes(text)
    (root / "loghub-2k" / "CITATION").write_text("@inproceedings{Loghub}\n", encoding="utf-8")
    return root


def test_pick_rare_token_is_deterministic_and_whole() -> None:
    token = bench.pick_rare_token(_log_text())
    assert token == ("node7abc", 1)  # the single rare token of >= 6 chars with a letter
    # Most lines first, then byte order; "Zabcdef" appears inside a longer token elsewhere,
    # so it is not whole everywhere and is skipped.
    data = b"alpha1 beta22\nalpha1 gamma33\nZabcdef\nZabcdef_long\nbeta22 alpha1\n"
    assert bench.pick_rare_token(data) == ("alpha1", 3)
    assert bench.pick_rare_token(b"a b c\n1234567 890123\n") is None  # none with a letter
    common = b"".join(b"every line has common1\n" for _ in range(10))
    assert bench.pick_rare_token(common) is None  # in more than RARE_MAX_LINES lines


def test_build_inputs_concatenates_loghub_and_truncates_quick(
    data_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)
    assert [i.name for i in inputs] == ["Foo_301.log", bench.CONCAT_NAME]
    raw, concat = inputs
    assert raw.path == data_dir / "raw" / "Foo_301.log"  # read in place, never copied
    assert (raw.lines, raw.size_bytes) == (301, len(_log_text()))
    # A newline is put between files that lack one, so systems' lines never fuse.
    assert concat.path.read_bytes() == b"bar INFO one\nbar WARN twoXYZ\nbaz INFO three\n"
    assert concat.path.parent == work and concat.lines == 3

    quick = bench.build_inputs(data_dir, work, quick_lines=2)
    assert [i.lines for i in quick] == [2, 2]
    assert quick[0].path.read_bytes() == b"".join(_log_text().splitlines(keepends=True)[:2])
    assert bench.build_inputs(tmp_path / "nothing", work) == []


def test_baselines_round_trip_with_ratios_and_speeds() -> None:
    data = _log_text()
    for codec in bench.BASELINES:
        run = bench.measure_baseline(codec, data, n_runs=2)
        assert run.ok and run.round_trip_ok is True and run.error is None
        assert len(run.compress_secs) == len(run.decompress_secs) == 2
        assert run.ratio is not None and run.ratio > 5  # very repetitive text
        assert run.output_bytes is not None and run.ratio == len(data) / run.output_bytes
        assert run.compress_mb_per_sec is not None and run.compress_mb_per_sec > 0
        assert run.decompress_mb_per_sec is not None and run.decompress_mb_per_sec > 0
    assert [c.label for c in bench.BASELINES] == ["gzip -6", "xz -9e", "zstd -19"]
    assert bench.measure_baseline(bench.BASELINES[0], data, 1).output_bytes == len(
        gzip.compress(data, 6)
    )


def test_lossy_baseline_is_recorded() -> None:
    lossy = bench.Codec("gzip", "lossy", gzip.compress, lambda d: b"x")
    run = bench.measure_baseline(lossy, _log_text(), n_runs=1)
    assert run.round_trip_ok is False and run.error is not None
    assert run.ratio is None and run.compress_mb_per_sec is None


def test_logpipe_through_a_fake_cli(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)
    report = bench.run_benchmark(inputs, n_runs=2, workdir=work, cli=fake_cli(tmp_path))
    assert report.startup_secs is not None and report.startup_secs > 0
    entry = report.inputs[0]
    ours = entry.runs[bench.OURS]
    assert ours.ok and ours.round_trip_ok is True
    assert len(ours.compress_secs) == len(ours.decompress_secs) == 2
    assert ours.output_bytes == len(gzip.compress(_log_text()))  # the fake stores gzip -9
    assert ours.ratio is not None and ours.ratio > 1
    assert ours.compress_mb_per_sec is not None and ours.compress_mb_per_sec > 0
    assert ours.decompress_mb_per_sec is not None and ours.decompress_mb_per_sec > 0
    vs = entry.versus("xz")
    assert vs["ratio"] == pytest.approx(ours.ratio / entry.runs["xz"].ratio)  # type: ignore[operator]
    assert all(v is not None and v > 0 for v in vs.values())
    assert all(isinstance(v, bool) for v in entry.targets_met().values())
    grep = entry.grep
    assert grep is not None and grep.error is None
    assert (grep.token, grep.expected_lines) == ("node7abc", 1)
    assert grep.logpipe_lines == grep.baseline_lines == 1 and grep.same_lines is True
    assert grep.speedup is not None and grep.speedup > 0
    assert not list(work.glob("*.lpz")) and not list(work.glob("*.back"))  # cleaned up
    # The concatenation has a token only in "twoXYZ" (whole, in one line).
    concat_grep = report.inputs[1].grep
    assert concat_grep is not None and concat_grep.token == "twoXYZ"


def test_failing_compress_is_recorded(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)[:1]
    report = bench.run_benchmark(inputs, 1, work, cli=fake_cli(tmp_path, "no-compress"))
    entry = report.inputs[0]
    ours = entry.runs[bench.OURS]
    assert ours.error == "compress: exit 1: Error: No such command 'compress'."
    assert ours.ratio is None and ours.round_trip_ok is None
    assert entry.runs["xz"].ok  # the baselines still ran
    assert entry.versus("xz")["ratio"] is None
    assert set(entry.targets_met().values()) == {None}
    assert entry.grep is not None and entry.grep.speedup is None
    assert entry.grep.error == "no archive (logpipe compress failed)"
    rows = bench._compression_rows(report)
    assert any("No such command" in cell for row in rows for cell in row)
    payload = bench.to_json(bench.compression_run_info(quick=True), report)
    assert payload["inputs"]["Foo_301.log"]["tools"]["logpipe"]["ratio"] is None


def test_lossy_decompress_is_recorded(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)[:1]
    report = bench.run_benchmark(inputs, 1, work, cli=fake_cli(tmp_path, "lossy"))
    ours = report.inputs[0].runs[bench.OURS]
    assert ours.round_trip_ok is False
    assert ours.error == "decompress: output differs from the input"
    assert ours.ratio is None and ours.decompress_mb_per_sec is None
    assert report.inputs[0].grep is not None
    assert report.inputs[0].grep.error == "archive does not round-trip"
    assert any("DIFFERS" in row for row in bench._compression_rows(report))


def test_grep_with_different_lines_is_recorded(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)[:1]
    report = bench.run_benchmark(inputs, 1, work, cli=fake_cli(tmp_path, "grep-drops"))
    grep = report.inputs[0].grep
    assert grep is not None
    assert grep.error == "logpipe grep found 0 lines, decompress+grep 1"
    assert grep.same_lines is False and grep.speedup is None


def test_failing_decompress_in_the_grep_pipe_is_recorded(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)[:1]
    report = bench.run_benchmark(inputs, 1, work, cli=fake_cli(tmp_path, "no-stdout"))
    grep = report.inputs[0].grep
    assert grep is not None and grep.logpipe_lines == 1  # logpipe grep itself ran
    # Not mistaken for "grep found nothing": the decompress failure is named.
    assert grep.error == "decompress: exit 1: Error: -o - is not supported"
    assert grep.speedup is None


def test_markdown_json_and_results_file(data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    inputs = bench.build_inputs(data_dir, work)
    report = bench.run_benchmark(inputs, 1, work, cli=fake_cli(tmp_path))
    info = bench.compression_run_info(quick=False)
    section = bench.render_markdown(info, report, citation="@inproceedings{Loghub}")
    assert section.startswith(bench.SECTION_BEGIN) and section.rstrip().endswith(bench.SECTION_END)
    for text in ("| Foo_301.log |", "| xz -9e |", "logpipe / xz -9e", "node7abc", "Loghub"):
        assert text in section
    assert "@inproceedings{Loghub}" in section

    results = tmp_path / "RESULTS.md"
    parsing_section = f"{parsing.SECTION_BEGIN}\n## Parsing\nkept\n{parsing.SECTION_END}\n"
    results.write_text(f"# Benchmark results\n\n{parsing_section}", encoding="utf-8")
    bench.write_results(results, section)
    bench.write_results(results, section.replace("| Foo_301.log |", "| Foo2 |"))
    text = results.read_text(encoding="utf-8")
    assert parsing_section in text  # the parsing section survives byte for byte
    assert text.count(bench.SECTION_BEGIN) == 1  # replaced, not appended again
    assert "| Foo2 |" in text and "| Foo_301.log |" not in text

    payload = json.loads(json.dumps(bench.to_json(info, report)))
    entry = payload["inputs"]["Foo_301.log"]
    assert entry["tools"]["xz"]["ratio"] > 0 and entry["tools"]["logpipe"]["round_trip_ok"]
    assert entry["logpipe_over"]["gzip"]["ratio"] > 0
    assert entry["grep"]["token"] == "node7abc"
    assert payload["targets"]["ratio_vs_xz"] == 1.3 and payload["zstandard"]


def test_main_json_is_last_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data", str(data_dir), "--quick", "--json"]
    assert bench.main(argv, cli=fake_cli(tmp_path)) == 0
    out = capsys.readouterr().out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["benchmark"] == "compression" and payload["quick"] is True
    assert set(payload["inputs"]) == {"Foo_301.log", bench.CONCAT_NAME}
    assert payload["inputs"]["Foo_301.log"]["tools"]["logpipe"]["error"] is None
    assert "grep for a rare token" in out


def test_main_without_data(tmp_path: Path) -> None:
    assert bench.main(["--data", str(tmp_path), "--quick"]) == 1


def test_quick_refuses_to_write_results() -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--quick", "--write-results"])
    assert exc.value.code == 2


@pytest.mark.data
def test_shared_inputs_and_their_rare_tokens(shared_data: Path, tmp_path: Path) -> None:
    inputs = bench.build_inputs(shared_data, tmp_path)
    names = [i.name for i in inputs]
    assert names == [
        "HDFS_20000.log",
        "HealthApp_20000.log",
        "Linux_25567.log",
        bench.CONCAT_NAME,
    ]
    assert inputs[-1].lines == 14 * 2000
    for inp in inputs:
        picked = bench.pick_rare_token(inp.path.read_bytes())
        assert picked is not None, inp.name
        assert 1 <= picked[1] <= bench.RARE_MAX_LINES
