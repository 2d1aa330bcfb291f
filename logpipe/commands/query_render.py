"""Printing a Loki query body (``{"status", "data": {"resultType", "result"}}``) for people
(``table``), for programs (``jsonl``) and for pipes (``raw``).

Why it reads the JSON body and not result objects: ``logpipe query`` gets the same body from
a local store and from a remote server, so one renderer serves both. Log entries of all
streams are merged into one timeline (newest first for ``backward``), as logcli prints them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from logpipe.labels import format_labels
from logpipe.timefmt import rfc3339

__all__ = ["OUTPUTS", "render"]

OUTPUTS = ("table", "jsonl", "raw", "json")


def _seconds_text(value: float | int) -> str:
    return rfc3339(round(float(value) * 1000) * 1_000_000)


def _entries(result: list[Any], direction: str) -> list[tuple[int, dict[str, str], str]]:
    rows = [
        (int(ts), stream["stream"], line) for stream in result for ts, line, *_ in stream["values"]
    ]
    rows.sort(key=lambda row: row[0], reverse=direction == "backward")
    return rows


def _points(kind: str, result: Any) -> Iterator[tuple[dict[str, str], float | int, str]]:
    if kind == "matrix":
        for series in result:
            for ts, value in series["values"]:
                yield series["metric"], ts, value
    elif kind == "vector":
        for sample in result:
            yield sample["metric"], sample["value"][0], sample["value"][1]
    else:  # scalar
        yield {}, result[0], result[1]


def render(body: dict[str, Any], output: str, out: TextIO, *, direction: str = "backward") -> None:
    """Write ``body`` to ``out`` in ``output`` form (``json`` is handled by the caller, which
    holds the exact bytes)."""
    data = body["data"]
    kind, result = data["resultType"], data["result"]
    if output == "table":
        _table(kind, result, out, direction)
        return
    if kind == "streams":
        for ts, labels, line in _entries(result, direction):
            if output == "raw":
                out.write(line + "\n")
            else:
                record: dict[str, Any] = {"ts": str(ts), "time": rfc3339(ts), "labels": labels,
                                          "line": line}  # fmt: skip
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    for labels, seconds, value in _points(kind, result):
        if output == "raw":
            out.write(f"{format_labels(labels)} {_seconds_text(seconds)} {value}\n")
        else:
            when = _seconds_text(seconds)
            point = {"time": when, "ts": seconds, "labels": labels, "value": value}
            out.write(json.dumps(point, ensure_ascii=False) + "\n")


def _table(kind: str, result: Any, out: TextIO, direction: str) -> None:
    from rich.console import Console  # noqa: PLC0415 - rich only for tables
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    table = Table(show_edge=False, pad_edge=False)
    if kind == "streams":
        rows = _entries(result, direction)
        table.title = f"{len(rows)} entries from {len(result)} streams"
        for column in ("time", "labels", "line"):
            table.add_column(column, overflow="fold")
        for ts, labels, line in rows:
            table.add_row(rfc3339(ts), format_labels(labels), Text(line))
    else:
        points = list(_points(kind, result))
        table.title = f"{kind}: {len(points)} points"
        table.add_column("labels", overflow="fold")
        table.add_column("time")
        table.add_column("value", justify="right")
        for labels, seconds, value in points:
            table.add_row(format_labels(labels), _seconds_text(seconds), value)
    Console(file=out, soft_wrap=False, width=None if out.isatty() else 200).print(table)
