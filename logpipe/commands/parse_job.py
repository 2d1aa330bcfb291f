"""The engine behind ``logpipe parse``: two streaming phases over Arrow batches.

Phase 1 reads every input batch by batch: decode, frame (header regex), mine templates, and
spill the batch (header fields, content, cluster id, error) to an Arrow IPC file. Phase 2,
once mining is over and every cluster's *final* template is known, reads each spill back
in chunks, resolves each line's final template and event (``TemplateMiner.line_templates``),
extracts its parameters and writes the outputs; chunks are resolved on a two-thread pool.
Memory therefore stays at a few batches whatever the input size, and the per-line Python
work is limited to what the miner itself needs.

Without an output directory the spill goes to a temporary directory: the summary counts
events, and an event is only known once the whole input has been mined.

``--parser llm`` swaps the miner for :class:`~logpipe.parsing.llm.LLMParser`, which has the
same methods: phase 1 mines statistically, phase 2 resolves each final statistical template
through the parsing cache and (within the call budget) the model. Phase 2 then runs its
chunks one at a time, in order, so cache ids do not depend on thread timing.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from logpipe import formats
from logpipe.errors import InputError, LogpipeError, UsageError
from logpipe.io.decode import decode_lines
from logpipe.io.inputs import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_LINES,
    DEFAULT_MAX_LINE_BYTES,
    InputSource,
    ReadBatch,
    expand_inputs,
    read_batches,
)
from logpipe.io.outputs import (
    OutputFormat,
    StructuredRows,
    StructuredWriter,
    TemplateRow,
    open_structured_writer,
    output_paths,
    write_templates,
)
from logpipe.io.spill import SpillDir, SpillWriter
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import DEFAULT_API_KEY_ENV, make_backend
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.parsing.params import extract_params_batch
from logpipe.records import ErrorReason

__all__ = [
    "PARSERS",
    "InputReport",
    "LLMOptions",
    "NullProgress",
    "ParseOptions",
    "ParseReport",
    "ProgressSink",
    "run_parse",
]

#: Lines of the first batch handed to format auto-detection.
SAMPLE_LINES = 200
_T = TypeVar("_T")
# Phase 2 works on chunks of this many rows, this many at a time.
_CHUNK_ROWS = 8192
_RESOLVE_ROWS = _CHUNK_ROWS  # phase 2 re-cuts the spill into chunks of this size
_WORKERS = 2
#: ``--parser`` choices: the statistical miner alone, or the hybrid LLM parser.
PARSERS = ("stat", "llm")


@dataclass(frozen=True)
class _Prepared:
    """A chunk after the kernel-only work of phase 1, ready to be mined."""

    rb: ReadBatch
    fields: dict[str, pa.Array]
    content: pa.Array
    masked: pa.Array
    error: pa.Array
    counts: tuple[int, int, int]  # unmatched, invalid UTF-8, truncated


def _starts(rb: ReadBatch) -> range:
    return range(0, max(rb.batch.num_rows, 1), _CHUNK_ROWS)


def _slice_read(rb: ReadBatch, start: int) -> ReadBatch:
    if start == 0 and rb.batch.num_rows <= _CHUNK_ROWS:
        return rb
    truncated = None if rb.truncated is None else rb.truncated.slice(start, _CHUNK_ROWS)
    return ReadBatch(rb.batch.slice(start, _CHUNK_ROWS), truncated, rb.position_bytes)


def _chunks(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Re-cut ``batches`` into chunks of ``rows`` rows (the last may be shorter)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held).combine_chunks()
            yield table.slice(0, rows).to_batches()[0]
            rest = table.slice(rows)
            held = rest.to_batches() if rest.num_rows else []
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


def _ordered(pool: ThreadPoolExecutor, jobs: Iterable[Callable[[], _T]]) -> Iterator[_T]:
    """Run ``jobs`` on ``pool`` with a bounded number in flight; yield results in order."""
    pending: deque[Future[_T]] = deque()
    source = iter(jobs)
    while True:
        try:
            job = next(source)
        except StopIteration:
            break
        except BaseException:
            # the input failed (a truncated gzip): deliver what was read before the damage
            while pending:
                yield pending.popleft().result()
            raise
        pending.append(pool.submit(job))
        if len(pending) > _WORKERS:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@dataclass(frozen=True)
class LLMOptions:
    """How ``--parser llm`` reaches its model (the ``--llm-*`` flags)."""

    backend: str = "local"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    max_calls_per_second: float = LLMParserConfig.max_calls_per_second
    timeout_s: float = 30.0
    local_mode: str = "probe"
    local_margin: float | None = None


@dataclass(frozen=True)
class ParseOptions:
    """What to parse and where to write it (the CLI flags, validated)."""

    paths: Sequence[str]
    log_format: str | None = None
    preset: str | None = None
    out_dir: Path | None = None
    output_format: OutputFormat = OutputFormat.CSV
    state_in: Path | None = None
    state_out: Path | None = None
    batch_lines: int = DEFAULT_BATCH_LINES
    batch_bytes: int = DEFAULT_BATCH_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    parser: str = "stat"
    llm: LLMOptions = field(default_factory=LLMOptions)


@dataclass
class InputReport:
    """Per-input counts, written files and the read error, if the input ended early."""

    path: str
    name: str
    lines: int = 0
    unmatched: int = 0
    invalid_utf8: int = 0
    truncated: int = 0
    outputs: list[str] = field(default_factory=list)
    error: InputError | None = None
    occurrences: Counter[str] = field(default_factory=Counter)


@dataclass
class ParseReport:
    """Everything the summary shows."""

    inputs: list[InputReport]
    templates: list[TemplateRow]  # every template seen in this run, most frequent first
    seconds: float
    framer: str
    llm: dict[str, int] | None = None  # the LLM parser's counters (model calls...), if used

    @property
    def lines(self) -> int:
        return sum(i.lines for i in self.inputs)

    @property
    def unmatched(self) -> int:
        return sum(i.unmatched for i in self.inputs)

    @property
    def invalid_utf8(self) -> int:
        return sum(i.invalid_utf8 for i in self.inputs)

    @property
    def truncated(self) -> int:
        return sum(i.truncated for i in self.inputs)

    @property
    def errors(self) -> list[InputError]:
        return [i.error for i in self.inputs if i.error is not None]


class ProgressSink(Protocol):
    """Where progress goes (a rich bar on a terminal, nothing otherwise)."""

    def start(self, description: str, total: int | None) -> None: ...

    def update(self, completed: int) -> None: ...

    def stop(self) -> None: ...


class NullProgress:
    """Progress that goes nowhere."""

    def start(self, description: str, total: int | None) -> None:
        return None

    def update(self, completed: int) -> None:
        return None

    def stop(self) -> None:
        return None


# --------------------------------------------------------------------------- helpers


def _params(content: pa.Array, templates: pa.Array) -> pa.Array:
    """Each line's parameters under its final template.

    A repeated message has the same template and the same values, so each distinct message
    of the chunk is matched once and the results are spread back.
    """
    distinct = pc.dictionary_encode(content)
    first = pc.index_in(distinct.dictionary, value_set=content)
    by_template = pc.dictionary_encode(templates.take(first))
    lookup = dict(enumerate(by_template.dictionary.to_pylist()))
    params = extract_params_batch(lookup, by_template.indices, distinct.dictionary)
    return params.take(distinct.indices)


def _error_column(n: int, reasons: Sequence[tuple[pa.Array | None, str]]) -> pa.Array:
    """Comma-separated reasons per line (null when clean), from one bool mask per reason."""
    error: pa.Array = pa.nulls(n, pa.string())
    for mask, reason in reasons:
        if mask is None or not pc.any(mask).as_py():
            continue
        appended = pc.binary_join_element_wise(error, reason, ",")
        error = pc.if_else(mask, pc.coalesce(appended, reason), error)
    return error


def _true_count(mask: pa.Array | None) -> int:
    return 0 if mask is None else int(pc.sum(mask).as_py() or 0)


def _load_llm_parser(state_in: Path | None, llm: LLMOptions) -> LLMParser:
    backend = make_backend(llm.backend, base_url=llm.base_url, model=llm.model,
                           api_key_env=llm.api_key_env, timeout_s=llm.timeout_s,
                           local_mode=llm.local_mode, local_margin=llm.local_margin)  # fmt: skip
    # a batch job over files: nothing queues behind it, so the budget paces the calls
    # instead of deferring groups to batches that may never come
    config = LLMParserConfig(max_calls_per_second=llm.max_calls_per_second, wait_for_budget=True)
    if state_in is None:
        return LLMParser(backend, config=config)
    if not state_in.is_file():
        raise InputError("no such parser state file", path=str(state_in))
    return LLMParser.load(state_in, backend, config=config)


def _load_miner(state_in: Path | None) -> TemplateMiner:
    if state_in is None:
        return TemplateMiner(MinerConfig())
    load: Callable[[Path], TemplateMiner] | None = getattr(TemplateMiner, "load", None)
    if load is None:
        raise UsageError("--state-in: this build's template miner cannot load a saved state")
    if not state_in.is_file():
        raise InputError("no such parser state file", path=str(state_in))
    return load(state_in)


def _prepare_out_dir(out_dir: Path) -> SpillDir:
    """Create ``out_dir`` and the spill directory inside it (which also proves it writable)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return SpillDir(out_dir)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot write there ({exc.strerror})") from None


def _as_string(values: pa.Array) -> pa.Array:
    """Framers should return ``string`` arrays; accept ``large_string`` and the like too."""
    return values if values.type == pa.string() else values.cast(pa.string())


# --------------------------------------------------------------------------- the job


class _Job:
    def __init__(self, options: ParseOptions, progress: ProgressSink) -> None:
        self.opts = options
        self.progress = progress
        if options.log_format is not None and options.preset is not None:
            raise UsageError("give either --log-format or --preset, not both")
        self.sources = expand_inputs(options.paths)
        if options.state_out is not None and not hasattr(TemplateMiner, "save"):
            raise UsageError("--state-out: this build's template miner cannot save its state")
        if options.parser not in PARSERS:
            raise UsageError(f"--parser {options.parser!r}: choose one of {', '.join(PARSERS)}")
        self.miner: TemplateMiner | LLMParser = (
            _load_llm_parser(options.state_in, options.llm)
            if options.parser == "llm"
            else _load_miner(options.state_in)
        )
        # the LLM parser resolves phase 2 in order (deterministic cache ids)
        self.resolvers = 1 if isinstance(self.miner, LLMParser) else _WORKERS
        # a resumed state carries its counters: the report shows this run's
        self.llm_before = asdict(self.miner.stats) if isinstance(self.miner, LLMParser) else {}
        self.framer: formats.Framer | None = None
        if options.log_format is not None or options.preset is not None:
            self.framer = formats.resolve_framer(options.log_format, options.preset, [])
        self.max_chars: int | None = getattr(self.miner.config, "max_line_chars", None)
        self.reports = [InputReport(path=s.path, name=s.name) for s in self.sources]
        self.field_names: tuple[str, ...] = ()
        self.spill_schema: pa.Schema | None = None
        self.event_templates: dict[str, str] = {}

    # -- phase 1

    def _framer_for(self, sample: pa.Array) -> formats.Framer:
        if self.framer is None:
            lines = sample.slice(0, SAMPLE_LINES).to_pylist()
            self.framer = formats.resolve_framer(self.opts.log_format, self.opts.preset, lines)
        return self.framer

    def _schema(self, framer: formats.Framer) -> pa.Schema:
        if self.spill_schema is None:
            self.field_names = tuple(framer.field_names)
            self.spill_schema = pa.schema(
                [
                    pa.field("line_id", pa.int64()),
                    *(pa.field(f"field_{i}", pa.string()) for i in range(len(self.field_names))),
                    pa.field("content", pa.string()),
                    pa.field("cluster_id", pa.int64()),
                    pa.field("error", pa.string()),
                ]
            )
        return self.spill_schema

    def _prepare(self, rb: ReadBatch) -> _Prepared:
        """Decode, frame and premask one chunk: Arrow kernels only, safe on a worker thread."""
        decoded = decode_lines(rb.batch.column("line"))
        framer = self._framer_for(decoded.content)
        framed = framer.frame(decoded.content)
        content = _as_string(framed.content)
        unmatched = pc.invert(pc.fill_null(framed.matched, False))
        truncated = rb.truncated
        if self.max_chars is not None:
            too_long = pc.greater(pc.utf8_length(content), self.max_chars)
            truncated = too_long if truncated is None else pc.or_(truncated, too_long)
        error = _error_column(
            rb.batch.num_rows,
            [
                (decoded.invalid_utf8, ErrorReason.INVALID_UTF8),
                (unmatched, ErrorReason.NO_FORMAT_MATCH),
                (truncated, ErrorReason.TRUNCATED),
            ],
        )
        return _Prepared(
            rb=rb,
            fields={name: _as_string(values) for name, values in framed.fields.items()},
            content=content,
            masked=self.miner.premasked(content),
            error=error,
            counts=(
                _true_count(unmatched),
                _true_count(decoded.invalid_utf8),
                _true_count(truncated),
            ),
        )

    def _mine_batch(self, prep: _Prepared, report: InputReport) -> pa.RecordBatch:
        """Mine a prepared chunk (in input order, on the main thread) into a spill batch."""
        schema = self._schema(self._framer_for(prep.content))
        ids = self.miner.add_batch(prep.content, premasked=prep.masked)
        unmatched, invalid, truncated = prep.counts
        report.lines += prep.rb.batch.num_rows
        report.unmatched += unmatched
        report.invalid_utf8 += invalid
        report.truncated += truncated
        fields = [prep.fields[name] for name in self.field_names]
        return pa.RecordBatch.from_arrays(
            [prep.rb.batch.column("lineno"), *fields, prep.content, ids, prep.error],
            schema=schema,
        )

    def _phase1(self, spill: SpillDir | None) -> list[SpillWriter | None]:
        sizes = [s.size_bytes for s in self.sources]
        total = None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)
        self.progress.start("reading", total)
        done_bytes = 0
        spills: list[SpillWriter | None] = []
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for index, (source, report) in enumerate(zip(self.sources, self.reports, strict=True)):
                writer: SpillWriter | None = None
                path = spill.file(index) if spill is not None else None
                try:
                    for prep in self._prepared(pool, source):
                        out = self._mine_batch(prep, report)
                        if path is not None:
                            if writer is None:
                                writer = SpillWriter(path, out.schema)
                            writer.write(out)
                        self.progress.update(done_bytes + prep.rb.position_bytes)
                except InputError as exc:
                    report.error = exc
                finally:
                    if writer is not None:
                        writer.close()
                done_bytes += source.size_bytes or 0
                spills.append(writer)
        self.progress.stop()
        return spills

    def _prepared(self, pool: ThreadPoolExecutor, source: InputSource) -> Iterator[_Prepared]:
        """Chunks of ``source`` prepared on ``pool`` (the first one here, to fix the format)."""
        chunks = (_slice_read(rb, start) for rb in self._read(source) for start in _starts(rb))
        if self.framer is None:
            first = next(chunks, None)
            if first is None:
                return
            yield self._prepare(first)
        yield from _ordered(pool, (partial(self._prepare, chunk) for chunk in chunks))

    def _read(self, source: InputSource) -> Any:
        return read_batches(
            source,
            batch_lines=self.opts.batch_lines,
            batch_bytes=self.opts.batch_bytes,
            max_line_bytes=self.opts.max_line_bytes,
        )

    # -- phase 2

    def _phase2(self, out_dir: Path | None, spills: Sequence[SpillWriter | None]) -> None:
        """Resolve every line's final template and event, count them, write the outputs.

        Chunks of rows are resolved and encoded on a small thread pool (Arrow's kernels
        release the GIL, so the two cores overlap), and written here in row order.
        """
        fmt = self.opts.output_format
        self.progress.start(
            "writing" if out_dir else "counting", sum(r.lines for r in self.reports)
        )
        written = 0
        with ThreadPoolExecutor(max_workers=self.resolvers) as pool:
            for report, held in zip(self.reports, spills, strict=True):
                writer = (
                    open_structured_writer(fmt, out_dir, report.name, self.field_names)
                    if out_dir is not None
                    else None
                )
                try:
                    chunks = _chunks(held.reader(), _RESOLVE_ROWS) if held is not None else ()
                    for templates, events, encoded in _ordered(
                        pool, (partial(self._resolve, chunk, writer) for chunk in chunks)
                    ):
                        self._count(report, templates, events)
                        if writer is not None:
                            writer.write_encoded(encoded)
                        written += len(events)
                        self.progress.update(written)
                except BaseException:
                    if writer is not None:
                        writer.abort()
                    raise
                if writer is not None and out_dir is not None:
                    writer.close()
                    rows = _template_rows(report.occurrences, self.event_templates)
                    write_templates(fmt, out_dir, report.name, rows)
                    report.outputs = [str(p) for p in output_paths(out_dir, report.name, fmt)]
        self.progress.stop()

    def _resolve(
        self, batch: pa.RecordBatch, writer: StructuredWriter | None
    ) -> tuple[pa.Array, pa.Array, Any]:
        """Templates, event ids and (when writing) the encoded output of one chunk."""
        content = batch.column("content")
        templates, events = self.miner.line_templates(batch.column("cluster_id"), content)
        encoded = None
        if writer is not None:
            encoded = writer.encode(self._rows(batch, content, templates, events))
        return templates, events, encoded

    def _count(self, report: InputReport, templates: pa.Array, events: pa.Array) -> None:
        counts = pc.value_counts(pc.fill_null(events, ""))
        report.occurrences.update(
            dict(
                zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                )
            )
        )
        new = [e for e in counts.field("values").to_pylist() if e not in self.event_templates]
        if new:
            # one line per new event is enough to learn its template text
            first = pc.index_in(pa.array(new, pa.string()), value_set=pc.fill_null(events, ""))
            texts = pc.fill_null(templates, "").take(first).to_pylist()
            self.event_templates.update(zip(new, texts, strict=True))

    def _rows(
        self, batch: pa.RecordBatch, content: pa.Array, templates: pa.Array, events: pa.Array
    ) -> StructuredRows:
        templates = pc.fill_null(templates, "")
        return StructuredRows(
            line_id=batch.column("line_id"),
            fields={name: batch.column(f"field_{i}") for i, name in enumerate(self.field_names)},
            content=content,
            event_id=events,
            template=templates,
            params=_params(content, templates),
            error=batch.column("error"),
        )

    # -- both

    def _llm_counts(self) -> dict[str, int] | None:
        if not isinstance(self.miner, LLMParser):
            return None
        now = asdict(self.miner.stats)
        return {k: int(v) - int(self.llm_before.get(k, 0)) for k, v in now.items()}

    def run(self) -> ParseReport:
        started = time.perf_counter()
        out_dir = self.opts.out_dir
        # Without --out the spill still goes somewhere: the summary counts events, and an
        # event is only known once mining has seen the whole input.
        spill = _prepare_out_dir(out_dir) if out_dir is not None else SpillDir(None)
        try:
            spills = self._phase1(spill)
            if self.spill_schema is None:  # every input was empty: still need the header fields
                self._schema(self._framer_for(pa.array([], pa.string())))
            self._phase2(out_dir, spills)
            # after phase 2: the LLM parser settles its templates (and cache) there
            if self.opts.state_out is not None:
                self.miner.save(self.opts.state_out)
            total: Counter[str] = Counter()
            for report in self.reports:
                total.update(report.occurrences)
        except OSError as exc:  # reads are InputErrors already: this is spill/result/state I/O
            where = exc.filename or out_dir or self.opts.state_out
            raise LogpipeError(
                f"cannot write {where}: {exc.strerror or exc}; check free space and permissions"
            ) from None
        finally:
            self.progress.stop()
            spill.cleanup()
        templates = _template_rows(total, self.event_templates)
        assert self.framer is not None
        return ParseReport(
            inputs=self.reports,
            templates=templates,
            seconds=time.perf_counter() - started,
            framer=self.framer.name,
            llm=self._llm_counts(),
        )


def _template_rows(occurrences: Counter[str], texts: dict[str, str]) -> list[TemplateRow]:
    """The events of ``occurrences`` with their final template, most frequent first."""
    rows = [TemplateRow(eid, texts.get(eid, ""), n) for eid, n in occurrences.items()]
    rows.sort(key=lambda r: (-r.occurrences, _event_order(r.event_id)))
    return rows


def _event_order(event_id: str) -> tuple[int, str]:
    """``E12-Started`` sorts by its cluster number, then by the rest."""
    head, _, rest = event_id.partition("-")
    digits = head[1:]
    return (int(digits) if digits.isdigit() else -1, rest)


def run_parse(options: ParseOptions, progress: ProgressSink | None = None) -> ParseReport:
    """Parse ``options.paths``; write outputs when ``options.out_dir`` is set.

    Raises :class:`~logpipe.errors.LogpipeError` for problems found before reading (missing
    input, bad flags). An input that cannot be read to the end (truncated gzip) does not stop
    the run: its complete lines are parsed and written, and the error is in the report.
    """
    return _Job(options, progress or NullProgress()).run()
