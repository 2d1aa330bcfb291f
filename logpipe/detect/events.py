"""Log lines into detector :class:`~logpipe.detect.windows.Event` s, with logpipe's own parser.

Why a module of its own: every detector (GLAD and the baselines) and every data set (HDFS,
BGL, the synthetic generator, a user's file in ``logpipe detect``) must turn text into
events the same way, or the benchmark compares detectors on different inputs. The steps are
the parse pipeline's, reused as they are:

1. **frame** each line with a log format (:func:`logpipe.formats.compile_format` or a Loghub
   preset) into header fields and the message ``Content``;
2. **time** each line from its header fields (:mod:`logpipe.timestamps`); a line without a
   readable time (a continuation, a line that does not match the format) takes the time of
   the line before it, and is counted;
3. **mine** templates with :class:`~logpipe.parsing.miner.TemplateMiner` over the whole input
   first (``add_batch``), then **resolve** each line's *final* template and event id
   (``line_templates``) and its parameters (:func:`~logpipe.parsing.params.extract_params_batch`),
   as ``logpipe parse`` does in its two phases.

The same :meth:`EventParser.parse` call serves both modes:

* **whole file**: one call over every line gives final templates for the file;
* **online**: a parser built on a saved miner state (:meth:`EventParser.from_state`) parses
  each new chunk by continuing to mine from that state. Lines of known templates get the
  event ids they had at training; a template never seen simply gets a new id (which every
  detector must treat as unseen). Mining may still generalise a known template's text or
  split a word slot, so a long-running scorer should reload its training state rather than
  carry one miner for ever.

Everything but the final :class:`Event` objects is vectorised (Arrow kernels and numpy);
building the events costs one small object per line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logpipe import formats
from logpipe.detect.windows import Event
from logpipe.errors import InputError, UsageError
from logpipe.io.decode import decode_lines
from logpipe.io.inputs import expand_inputs, read_batches
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.parsing.params import extract_params_batch
from logpipe.timestamps import PresetTime, parse_timestamps, timestamps_from_fields

__all__ = [
    "UNPARSED_EVENT_ID",
    "EventParser",
    "ParsedLines",
    "read_lines",
]

UNPARSED_EVENT_ID = "E0"
"""Event id of a line whose cluster the miner no longer holds (evicted): never a real id."""

_MINE_CHUNK = 65_536  # lines mined per add_batch call: bounds the miner's per-call memory


@dataclass(frozen=True)
class ParsedLines:
    """A parsed chunk of lines, column by column (row ``i`` is input line ``line_no[i]``).

    ``event_ids``/``templates``/``content`` are string arrays, ``params`` is
    ``list<string>``, ``fields`` the header fields of the format (null where a line did not
    match). ``unmatched`` counts lines that did not match the log format (their whole line is
    the content), ``untimed`` lines whose time was taken from the line before,
    ``invalid_utf8`` lines with undecodable bytes (U+FFFD in the content).
    """

    line_no: np.ndarray
    ts_ns: np.ndarray
    event_ids: pa.Array
    templates: pa.Array
    params: pa.Array
    content: pa.Array
    fields: dict[str, pa.Array]
    unmatched: int = 0
    untimed: int = 0
    invalid_utf8: int = 0

    def __len__(self) -> int:
        return len(self.line_no)

    def events(self) -> list[Event]:
        """One :class:`Event` per line, in input order.

        Event ids and template texts are shared string objects (one per distinct event),
        so a million events hold a few hundred template strings, not a million.
        """
        n = len(self)
        if n == 0:
            return []
        ids = pc.dictionary_encode(self.event_ids)
        id_names = ids.dictionary.to_pylist()
        id_index = ids.indices.to_numpy(zero_copy_only=False).tolist()
        tpl = pc.dictionary_encode(self.templates)
        tpl_names = tpl.dictionary.to_pylist()
        tpl_index = tpl.indices.to_numpy(zero_copy_only=False).tolist()
        params = [tuple(p) for p in self.params.to_pylist()]
        ts = self.ts_ns.tolist()
        line_no = self.line_no.tolist()
        return [
            Event(ts[i], id_names[id_index[i]], tpl_names[tpl_index[i]], params[i], line_no[i])
            for i in range(n)
        ]

    def templates_by_event(self) -> dict[str, str]:
        """Each event id of the chunk with its template text."""
        ids = pc.dictionary_encode(self.event_ids)
        first = pc.index_in(ids.dictionary, value_set=self.event_ids)
        texts = self.templates.take(first).to_pylist()
        return dict(zip(ids.dictionary.to_pylist(), texts, strict=True))


def read_lines(path: str | Path) -> pa.Array:
    """Every line of a file (plain, gzip or zstd) as a UTF-8 string array.

    Undecodable bytes become U+FFFD (the count is not needed here: the framer's content is
    what detectors see). Raises :class:`~logpipe.errors.InputError` naming the file when it
    is missing or cannot be read to the end.
    """
    sources = expand_inputs([str(path)])
    chunks: list[pa.Array] = []
    for source in sources:
        for rb in read_batches(source):
            chunks.append(decode_lines(rb.batch.column("line")).content)
    if not chunks:
        return pa.array([], pa.string())
    return pa.concat_arrays(chunks)


class EventParser:
    """Frames, times and mines log lines into events; keeps the miner across calls.

    Give the log format as a format string (``log_format``) or a Loghub preset name
    (``preset``). The time comes from the preset's time fields, from ``time`` when given
    (``PresetTime(("Timestamp",), LAYOUTS["epoch_s"])``), or from the format's time-like
    fields (``Date``, ``Time``, ``Timestamp``...) with the layout detected from the data.
    """

    def __init__(
        self,
        log_format: str | None = None,
        *,
        preset: str | None = None,
        miner: TemplateMiner | None = None,
        time: PresetTime | None = None,
        tz: str = "UTC",
        reference_ns: int | None = None,
    ) -> None:
        if (log_format is None) == (preset is None):
            raise UsageError("give the log format: a format string or a Loghub preset name")
        self.framer: formats.LogFormat = (
            formats.compile_format(log_format)
            if log_format is not None
            else formats.preset(str(preset))
        )
        self.log_format = log_format
        self.preset = preset
        self.time = time
        self.tz = tz
        self.reference_ns = reference_ns
        self.miner = miner if miner is not None else TemplateMiner(MinerConfig())
        # the time a headless first line of the next chunk inherits (online mode)
        self._last_ts_ns = 0

    @classmethod
    def from_state(
        cls,
        state: str | Path,
        log_format: str | None = None,
        *,
        preset: str | None = None,
        time: PresetTime | None = None,
        tz: str = "UTC",
    ) -> EventParser:
        """A parser that continues mining from a miner state saved by :meth:`save_state`."""
        return cls(log_format, preset=preset, miner=TemplateMiner.load(state), time=time, tz=tz)

    def save_state(self, path: str | Path) -> None:
        """Save the miner (JSON; never pickle) so that scoring continues from it."""
        self.miner.save(path)

    # ------------------------------------------------------------------ parsing
    def parse(self, lines: pa.Array | Sequence[str], *, first_line_no: int = 1) -> ParsedLines:
        """Parse ``lines`` (numbered from ``first_line_no``): mine all, then resolve.

        Mining every line before resolving any is what makes templates *final* for the
        chunk: a template generalised by a later line is the one its earlier lines get.
        """
        text = _as_strings(lines)
        n = len(text)
        framed = self.framer.frame(text)
        content = framed.content
        if content.type != pa.string():
            content = content.cast(pa.string())
        content = pc.fill_null(content, "")
        matched = pc.fill_null(framed.matched, False)
        unmatched = n - int(pc.sum(matched).as_py() or 0)
        ts, untimed = self._timestamps(framed.fields, n)
        cluster_ids = self._mine(content)
        templates, events = self.miner.line_templates(cluster_ids, content)
        if events.null_count:  # clusters evicted from a full miner: counted, never dropped
            templates = pc.if_else(pc.is_null(events), content, templates)
            events = pc.fill_null(events, UNPARSED_EVENT_ID)
        params = _params(templates, content)
        return ParsedLines(
            line_no=np.arange(first_line_no, first_line_no + n, dtype=np.int64),
            ts_ns=ts,
            event_ids=events,
            templates=templates,
            params=params,
            content=content,
            fields={k: v for k, v in framed.fields.items()},
            unmatched=unmatched,
            untimed=untimed,
        )

    def parse_file(self, path: str | Path) -> ParsedLines:
        """A whole file in two phases (final templates for the file)."""
        return self.parse(read_lines(path))

    def iter_file(self, path: str | Path, chunk_lines: int = 65_536) -> Iterator[ParsedLines]:
        """A file in chunks, each mined then resolved (online mode: memory stays bounded)."""
        if chunk_lines < 1:
            raise UsageError("chunk_lines must be positive")
        next_line = 1
        for source in expand_inputs([str(path)]):
            for rb in read_batches(source, batch_lines=chunk_lines):
                content = decode_lines(rb.batch.column("line"))
                parsed = self.parse(content.content, first_line_no=next_line)
                if content.invalid_utf8 is not None:
                    bad = int(pc.sum(content.invalid_utf8).as_py() or 0)
                    parsed = dataclasses.replace(parsed, invalid_utf8=bad)
                next_line += len(parsed)
                yield parsed

    def _timestamps(self, fields: dict[str, pa.Array], n: int) -> tuple[np.ndarray, int]:
        """Each line's time in ns (filled forward) and how many lines had none of their own."""
        if n == 0:
            return np.zeros(0, dtype=np.int64), 0
        if not fields and self.time is None:  # a format without header fields: no times
            return np.full(n, self._last_ts_ns, dtype=np.int64), n
        if self.time is not None:
            missing = [f for f in self.time.fields if f not in fields]
            if missing:
                raise UsageError(
                    f"the log format has no <{missing[0]}> field, which holds the time"
                )
            parts = [fields[f] for f in self.time.fields]
            text = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " ")
            ts_arr = parse_timestamps(
                text, self.time.layout, tz=self.tz, reference_ns=self.reference_ns
            ).ns
        else:
            ts_arr = timestamps_from_fields(
                fields,
                self.preset if self.preset is not None else self.log_format,
                tz=self.tz,
                reference_ns=self.reference_ns,
            )
        untimed = ts_arr.null_count
        if untimed:
            ts_arr = pc.fill_null(pc.fill_null_forward(ts_arr), self._last_ts_ns)
        ts = np.asarray(ts_arr.to_numpy(zero_copy_only=False), dtype=np.int64)
        self._last_ts_ns = int(ts[-1])
        return ts, int(untimed)

    def _mine(self, content: pa.Array) -> pa.Array:
        parts = [
            self.miner.add_batch(content.slice(start, _MINE_CHUNK))
            for start in range(0, len(content), _MINE_CHUNK)
        ]
        if not parts:
            return pa.array([], pa.int64())
        return pa.concat_arrays(parts)


def _as_strings(lines: pa.Array | Sequence[str]) -> pa.Array:
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if isinstance(lines, pa.Array):
        if pa.types.is_binary(lines.type) or pa.types.is_large_binary(lines.type):
            return decode_lines(lines.cast(pa.binary())).content
        if not pa.types.is_string(lines.type):
            lines = lines.cast(pa.string())
        return pc.fill_null(lines, "")
    if isinstance(lines, str | bytes):
        raise InputError("parse() takes a sequence of lines, not one string")
    return pa.array(list(lines), pa.string())


def _params(templates: pa.Array, content: pa.Array) -> pa.Array:
    """Each line's parameters under its final template (one regex pass per template).

    Lines are grouped by their final template text (a word-slot event has its own), and
    each distinct message is matched once: repeated messages share their values.
    """
    if len(content) == 0:
        return pa.array([], pa.list_(pa.string()))
    distinct = pc.dictionary_encode(content)
    first = pc.index_in(distinct.dictionary, value_set=content)
    by_template = pc.dictionary_encode(pc.fill_null(templates.take(first), ""))
    lookup: dict[int, str | None] = dict(enumerate(by_template.dictionary.to_pylist()))
    params = extract_params_batch(lookup, by_template.indices, distinct.dictionary)
    return params.take(distinct.indices)
