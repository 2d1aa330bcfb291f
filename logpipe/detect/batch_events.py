"""LogBatch rows → detector :class:`~logpipe.detect.windows.Event`\\ s, for the online stage.

A minimal, stand-alone conversion on purpose: the daemon's parse stage is being added
separately, and ``logpipe/detect/events.py`` (lines → events through our parser) will
replace the whole-line fallback. Swapping it means replacing :func:`batch_events` only.

* A batch with a ``template`` column (string) is parsed: ``template`` and ``params``
  (list of strings, when present) are used; the event id is the ``event_id`` column, else
  ``template_id``, else a hash of the template. A row whose template is null (the parser
  did not handle it) falls back to its line.
* Otherwise each line is its own event text: ``template`` = the line (decoded as UTF-8 with
  U+FFFD for bad bytes, cut to ``max_text_bytes``), no params, event id = a short stable
  hash of that text.

``ts`` null (a source that did not know the time) becomes ``now_ns``: the arrival time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.detect.windows import Event

__all__ = ["BatchEvents", "EventRow", "batch_events", "text_event_id"]


class EventRow(NamedTuple):
    """One row as the window builder needs it: stream labels, line text, event."""

    labels: str
    text: str
    event: Event


@dataclass
class BatchEvents:
    rows: list[EventRow] = field(default_factory=list)
    truncated: int = 0  # lines cut to max_text_bytes


def text_event_id(text: str) -> str:
    """A stable short id for an event text (the same text gives the same id anywhere)."""
    return "H" + hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


def _strings(batch: pa.RecordBatch, name: str) -> list[str | None] | None:
    if name not in batch.schema.names:
        return None
    column = batch.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    values: list[str | None] = column.to_pylist()
    return values


def batch_events(batch: pa.RecordBatch, *, max_text_bytes: int, now_ns: int) -> BatchEvents:
    """The events of ``batch``'s rows, in row order (see the module docstring)."""
    out = BatchEvents()
    n = batch.num_rows
    if n == 0:
        return out
    lines = batch.column("line")
    long = pc.greater(pc.binary_length(lines), max_text_bytes)
    out.truncated = int(pc.sum(long).as_py() or 0)
    if out.truncated:
        lines = pc.binary_slice(lines, 0, max_text_bytes)
    texts = [b.decode("utf-8", "replace") for b in lines.to_pylist()]
    labels = _strings(batch, "labels") or ["{}"] * n
    ts = pc.fill_null(batch.column("ts").cast(pa.int64()), now_ns).to_pylist()
    linenos = batch.column("lineno").to_pylist() if "lineno" in batch.schema.names else [0] * n
    templates = _strings(batch, "template")
    params: list[list[str] | None] = (
        batch.column("params").to_pylist() if "params" in batch.schema.names else [None] * n
    )
    ids = _strings(batch, "event_id") or _strings(batch, "template_id")
    for i in range(n):
        text = texts[i]
        template = templates[i] if templates is not None else None
        if template is None:
            event = Event(ts[i], text_event_id(text), text, (), linenos[i] or 0)
        else:
            event_id = (ids[i] if ids is not None else None) or text_event_id(template)
            values = tuple(v if v is not None else "" for v in (params[i] or ()))
            event = Event(ts[i], event_id, template, values, linenos[i] or 0)
        out.rows.append(EventRow(labels[i] or "{}", text, event))
    return out
