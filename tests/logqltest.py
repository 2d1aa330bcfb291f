"""Runner for ``.logqltest`` golden scripts (the idea of Loki's and Prometheus's test scripts).

A script loads lines into a fresh store and states what queries return::

    # comment
    load {app="web", host="n1"}
      0s   level=info msg="hi"
      1.5s level=error status=500

    eval range count_over_time({app="web"}[10s]) start=10s end=30s step=10s
      {app="web", host="n1"} 10 10 _

    eval instant sum by (level) (count_over_time({app="web"} | logfmt [10s])) at=30s
      {level="error"} 7

    eval logs {app="web"} |= "error" start=0s end=60s limit=3 direction=forward
      {app="web", host="n1"} 1.5s level=error status=500

    eval error count_over_time({app=~".*"}[1m]) at=1m
      at least one regexp or equality matcher

Times are durations since the Unix epoch. In ``range`` results ``_`` is a step without a
point; ``instant`` results may end with ``(in order)`` to require the order; an empty
result is a bare ``(empty)``. ``eval error`` expects a LogQLError whose message contains the
text. Values compare within 1e-9 (relative); ``NaN`` equals ``NaN``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from logpipe.errors import LogQLError
from logpipe.labels import format_labels, parse_labels
from logpipe.logql.engine import Engine
from logpipe.logql.results import Matrix, Scalar, Streams, Vector
from logpipe.logql.units import parse_duration
from logpipe.store import Store

_OPTION = re.compile(r"\s+(start|end|step|at|limit|direction)=(\S+)$")


@dataclass
class Case:
    kind: str  # range, instant, logs, error
    query: str
    options: dict[str, str]
    expected: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class Script:
    loads: list[tuple[dict[str, str], list[tuple[int, str]]]] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)


def _ns(text: str) -> int:
    return parse_duration(text) if text != "0" else 0


def parse_script(text: str, base: Path | None = None, script: Script | None = None) -> Script:
    """Parse a script; ``include FILE`` (relative to ``base``) loads another file's data."""
    script = script or Script()
    current_load: list[tuple[int, str]] | None = None
    current_case: Case | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw.startswith("include "):
            if base is None:
                raise ValueError(f"line {number}: include needs a base directory")
            parse_script((base / raw[8:].strip()).read_text("utf-8"), base, script)
            current_load = current_case = None
        elif raw.startswith("load "):
            current_case = None
            current_load = []
            script.loads.append((parse_labels(raw[5:].strip()), current_load))
        elif raw.startswith("eval "):
            current_load = None
            kind, rest = raw[5:].split(" ", 1)
            options: dict[str, str] = {}
            while m := _OPTION.search(rest):
                options[m.group(1)] = m.group(2)
                rest = rest[: m.start()]
            current_case = Case(kind, rest.strip(), options, line=number)
            script.cases.append(current_case)
        elif current_load is not None:
            when, _, line = raw.strip().partition(" ")
            current_load.append((_ns(when), line.strip()))
        elif current_case is not None:
            current_case.expected.append(raw.strip())
        else:
            raise ValueError(f"line {number}: unexpected {raw!r}")
    return script


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _split_labels(line: str) -> tuple[dict[str, str], str]:
    end = line.index("}") + 1
    while True:  # a value may hold "}": find the brace that closes a valid label set
        try:
            return parse_labels(line[:end]), line[end:].strip()
        except ValueError:
            end = line.index("}", end) + 1


def run_case(engine: Engine, case: Case) -> None:
    where = f"line {case.line}: {case.query}"
    opts = case.options
    try:
        if case.kind == "range":
            result = engine.query_range(
                case.query,
                start_ns=_ns(opts["start"]),
                end_ns=_ns(opts["end"]),
                step_ns=_ns(opts["step"]),
            )
        elif case.kind == "logs":
            result = engine.query_range(
                case.query, start_ns=_ns(opts["start"]), end_ns=_ns(opts["end"]),
                limit=int(opts.get("limit", "100")), direction=opts.get("direction", "backward"),
            )  # fmt: skip
        elif "at" in opts:
            result = engine.query_instant(case.query, time_ns=_ns(opts["at"]))
        else:
            result = engine.query_range(case.query, start_ns=_ns(opts["start"]),
                                        end_ns=_ns(opts["end"]))  # fmt: skip
    except LogQLError as err:
        if case.kind != "error":
            raise AssertionError(f"{where}: unexpected error {err}") from None
        assert case.expected and case.expected[0] in str(err), f"{where}: got {err}"
        return
    assert case.kind != "error", f"{where}: expected an error, got {result}"
    expected = [] if case.expected == ["(empty)"] else case.expected
    if isinstance(result, Streams):
        got = [
            (format_labels(s.labels), ts, line) for s in result.streams for ts, line in s.entries
        ]
        want = []
        for line in expected:
            labels, rest = _split_labels(line)
            when, _, text = rest.partition(" ")
            want.append((format_labels(labels), _ns(when), text))
        assert got == want, f"{where}:\n got  {got}\n want {want}"
    elif isinstance(result, Matrix):
        got_m = {format_labels(s.labels): dict(s.points) for s in result.series}
        start, step = _ns(opts["start"]), _ns(opts["step"])
        want_m: dict[str, dict[int, float]] = {}
        for line in expected:
            labels, rest = _split_labels(line)
            points = {start + i * step: float(v) for i, v in enumerate(rest.split()) if v != "_"}
            want_m[format_labels(labels)] = points
        assert got_m.keys() == want_m.keys(), f"{where}: {sorted(got_m)} != {sorted(want_m)}"
        for key, points in want_m.items():
            assert got_m[key].keys() == points.keys(), f"{where}: {key} steps {got_m[key]}"
            for t, v in points.items():
                assert _close(got_m[key][t], v), f"{where}: {key} at {t}: {got_m[key][t]} != {v}"
    elif isinstance(result, Vector):
        in_order = bool(expected) and expected[-1] == "(in order)"
        rows = expected[:-1] if in_order else expected
        got_v = [(format_labels(s.labels), s.value) for s in result.samples]
        want_v = []
        for line in rows:
            labels, rest = _split_labels(line)
            want_v.append((format_labels(labels), float(rest)))
        if not in_order:
            got_v.sort()
            want_v.sort()
        assert [k for k, _ in got_v] == [k for k, _ in want_v], f"{where}: {got_v} != {want_v}"
        for (k, a), (_, b) in zip(got_v, want_v, strict=True):
            assert _close(a, b), f"{where}: {k}: {a} != {b}"
    else:
        assert isinstance(result, Scalar)
        assert len(expected) == 1 and _close(result.value, float(expected[0])), f"{where}: {result}"


def run_script(path: Path, root: Path) -> int:
    """Run every case of ``path`` against a store under ``root``; the number of cases run."""
    script = parse_script(path.read_text("utf-8"), path.parent)
    store = Store(root)
    for labels, entries in script.loads:
        store.ingest("fake", labels, [t for t, _ in entries], [x.encode() for _, x in entries])
    engine = Engine(store)
    for case in script.cases:
        run_case(engine, case)
    return len(script.cases)
