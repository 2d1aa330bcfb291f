"""The parse stage: online template mining in the daemon (DESIGN.md §2, "parse").

Each batch gets four columns (see :mod:`logpipe.records`): ``template_id`` (int64, the
miner's cluster id), ``template`` (the cluster's template as mined so far, dictionary
encoded: a batch holds few distinct ones), ``params`` (``list<string>``, the values of the
template's variables in the line) and ``premasked`` (the line with its plain numbers as
``<*>``, dictionary encoded: what the miner groups lines by). Sinks that know them use them
(the Kafka sink publishes the first three; detection reads them); the store keeps the raw
line and encodes its segments with ``template`` and ``premasked`` instead of mining them
again.

Why it is cheap enough to be on by default: :meth:`TemplateMiner.add_batch` mines each
distinct *premasked* line once (a premask is Arrow regex kernels, which release the GIL and
so run beside the consumer's Python), and parameters are extracted per template with one
RE2 pattern over all its lines (:func:`~logpipe.parsing.params.extract_params_batch`).
The miner is bounded (``max_clusters``, least recently used evicted; long lines truncated).

**Template ids survive restarts.** The miner's state is a JSON file (by default
``<store root>/_checkpoints/templates.json``). :meth:`ParseStage.checkpoint` writes it
(temp file, fsync, rename) whenever a template changed; the runner calls it after the
sinks wrote a flush and *before* acknowledging it, so the saved state covers every line
whose position was committed (and maybe lines the stage thread has mined since, which is
harmless: mining a line again on a state that has seen it gives it the same id). A
restart, even after kill -9, loads it and gives the same lines the same ids. A state that
cannot be written (a full disk) holds the flush like a failing sink does.

**The hybrid parser.** Given an :class:`~logpipe.parsing.llm.LLMParser` (``parse.parser =
"llm"``), ``template_id`` is the parsing cache's entry id and ``template`` the confirmed
template; a group whose model call the budget refused keeps its statistical template for
now (the line is never held back), and the model's answers are checked before they get
here. Its state (miner, cache, resolutions) is checkpointed the same way. Switching parser
keeps the mined clusters: a statistical state resumes inside an LLM parser, and an LLM
state's miner resumes alone.

Threads: :meth:`process` runs on the pipeline's stage thread and :meth:`checkpoint` on
its writer thread; a lock keeps the miner consistent between them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from logpipe.errors import StateError
from logpipe.io.decode import decode_lines
from logpipe.parsing.llm import STATE_FORMAT as LLM_STATE_FORMAT
from logpipe.parsing.llm import LLMParser, LLMParserConfig
from logpipe.parsing.llm_backends import TemplateBackend
from logpipe.parsing.miner import MinerConfig, TemplateMiner
from logpipe.parsing.params import extract_params_batch
from logpipe.store.fsio import StoreFiles

__all__ = ["PARSE_COLUMNS", "ParseStage"]

log = logging.getLogger(__name__)

#: The columns this stage adds, in order.
PARSE_COLUMNS = (
    pa.field("template_id", pa.int64(), nullable=True),
    pa.field("template", pa.dictionary(pa.int32(), pa.string()), nullable=True),
    pa.field("params", pa.list_(pa.string()), nullable=False),
    pa.field("premasked", pa.dictionary(pa.int32(), pa.string()), nullable=False),
)


class ParseStage:
    """Mines templates of ``line`` online; see the module docstring.

    ``state_path`` (optional) is where the miner's state is loaded from and checkpointed
    to; ``params=False`` leaves the ``params`` column empty lists (cheaper when no sink
    needs the values).
    """

    name = "parse"

    def __init__(
        self,
        miner: TemplateMiner | LLMParser | None = None,
        *,
        state_path: str | Path | None = None,
        params: bool = True,
    ) -> None:
        self.miner: TemplateMiner | LLMParser = miner if miner is not None else TemplateMiner()
        self.params = params
        self.state_path = Path(state_path) if state_path is not None else None
        self._files = (
            StoreFiles(self.state_path.parent, None) if self.state_path is not None else None
        )
        self._saved_revision = self.miner.revision
        self._lock = threading.Lock()

    @classmethod
    def resume(
        cls,
        state_path: str | Path,
        *,
        max_clusters: int | None = None,
        params: bool = True,
        llm_config: LLMParserConfig | None = None,
        llm_backend: TemplateBackend | None = None,
    ) -> ParseStage:
        """The stage with the parser saved at ``state_path`` (a fresh one when there is
        none); the hybrid LLM parser when ``llm_config`` is given. A damaged state is
        renamed aside (``.damaged``) and reported; mining starts afresh, so new ids begin
        at 1 again: nothing is lost, the numbering restarts."""
        path = Path(state_path)
        parser: TemplateMiner | LLMParser | None = None
        if path.is_file():
            try:
                parser = _load_state(path, llm_config, llm_backend)
            except StateError as exc:
                aside = path.with_name(path.name + ".damaged")
                path.replace(aside)
                log.warning("template state unusable (%s); moved to %s", exc, aside)
        if parser is None:
            parser = TemplateMiner(MinerConfig())
            if llm_config is not None:
                parser = LLMParser(llm_backend, miner=parser, config=llm_config)
        miner = parser.miner if isinstance(parser, LLMParser) else parser
        if max_clusters is not None and max_clusters != miner.config.max_clusters:
            miner.config = dataclasses.replace(miner.config, max_clusters=max_clusters)
        return cls(parser, state_path=path, params=params)

    # -- Stage protocol -------------------------------------------------------------------

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        content = decode_lines(batch.column("line")).content
        masked = pc.dictionary_encode(self.miner.premasked(content))  # kernels: no lock
        if isinstance(self.miner, LLMParser):
            return self._process_llm(batch, self.miner, content, masked)
        with self._lock:
            ids = self.miner.add_batch(content, premasked=masked)
            distinct = pc.dictionary_encode(ids)
            cluster_ids = distinct.dictionary.to_pylist()
            texts = [self._template(cid) for cid in cluster_ids]
        template = pa.DictionaryArray.from_arrays(
            distinct.indices.cast(pa.int32()), pa.array(texts, pa.string())
        )
        if self.params:
            lookup = dict(zip(cluster_ids, texts, strict=True))
            params = extract_params_batch(lookup, ids, content)
        else:
            params = pa.array([[]] * batch.num_rows, pa.list_(pa.string()))
        return _with_columns(batch, ids, template, params, masked)

    def _process_llm(
        self, batch: pa.RecordBatch, parser: LLMParser, content: pa.Array, masked: pa.Array
    ) -> pa.RecordBatch:
        """Mine, then settle each line's template through the cache (and the model)."""
        with self._lock:
            cluster_ids = parser.add_batch(content, premasked=masked)
            ids, texts = parser.resolve(cluster_ids, content)
        encoded = pc.dictionary_encode(texts)
        template = pa.DictionaryArray.from_arrays(
            encoded.indices.cast(pa.int32()), encoded.dictionary
        )
        if self.params:
            distinct = pc.dictionary_encode(ids)
            entries = distinct.dictionary.to_pylist()
            lookup = {e: parser.template_of(e) for e in entries if e is not None}
            params = extract_params_batch(lookup, ids, content)
        else:
            params = pa.array([[]] * batch.num_rows, pa.list_(pa.string()))
        return _with_columns(batch, ids, template, params, masked)

    def _template(self, cluster_id: int) -> str | None:
        try:
            return self.miner.template_of(cluster_id)
        except KeyError:  # evicted by a later line of the same batch
            return None

    def checkpoint(self) -> None:
        """Make the state durable if a template changed since the last save (the runner
        calls this before acknowledging what the stage has seen)."""
        with self._lock:
            changed = self.miner.revision != self._saved_revision
        if changed:
            self._save()

    def flush(self) -> None:
        """Nothing is held back: every batch leaves with its columns."""

    def close(self) -> None:
        """Save the state with its final counts (a failure is logged: the last checkpoint
        still covers everything acknowledged)."""
        try:
            self._save()
        except OSError as exc:
            log.warning("could not save the template state at exit: %s", exc)

    def _save(self) -> None:
        if self._files is None or self.state_path is None:
            return
        with self._lock:  # the state refers to live clusters: serialise it under the lock
            revision = self.miner.revision
            data = json.dumps(self.miner.to_dict(), ensure_ascii=False, separators=(",", ":"))
        self._files.write_atomic(self.state_path.name, data.encode("utf-8"))
        self._saved_revision = revision


def _with_columns(
    batch: pa.RecordBatch, ids: pa.Array, template: pa.Array, params: pa.Array, masked: pa.Array
) -> pa.RecordBatch:
    """``batch`` with the four parse columns set (replaced when already there)."""
    masks = masked.cast(PARSE_COLUMNS[3].type)
    for field, column in zip(PARSE_COLUMNS, (ids, template, params, masks), strict=True):
        at = batch.schema.get_field_index(field.name)
        if at >= 0:
            batch = batch.set_column(at, field, column)
        else:
            batch = batch.append_column(field, column)
    return batch


def _load_state(
    path: Path, llm_config: LLMParserConfig | None, backend: TemplateBackend | None
) -> TemplateMiner | LLMParser:
    """The parser saved at ``path``, as the kind asked for (a switch keeps the clusters)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: cannot read the template state: {exc}") from exc
    if not isinstance(state, dict):
        raise StateError(f"{path}: the template state must be a JSON object")
    if state.get("format") == LLM_STATE_FORMAT:
        if llm_config is not None:
            return LLMParser.from_dict(state, backend, config=llm_config)
        return TemplateMiner.from_dict(state.get("miner") or {})
    miner = TemplateMiner.from_dict(state)
    return miner if llm_config is None else LLMParser(backend, miner=miner, config=llm_config)
