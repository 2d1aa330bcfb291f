"""Kafka source and sink (kafka-python >= 3.0.12; 2.x hangs against our test broker).

**Source.** A consumer group over ``topics``; each poll becomes one chunk per partition
(a LogBatch plus the offset range it consumed). Delivery is at-least-once with no
duplicates in the store:

* offsets are committed only for chunks the runner acked, i.e. after every sink durably
  wrote them (the store: segments fsync'd and renamed, then the manifest);
* the store records each partition's last offset in the same atomic manifest update, and
  on assignment the consumer seeks to that offset + 1, so a crash between the write and
  the commit re-reads nothing (and the store sink drops any overlap anyway);
* before partitions are revoked (a rebalance) the source drains the pipeline and commits
  synchronously, so the next owner starts exactly where this one stopped.

**Payloads.** ``text``: the value is the line (one trailing newline stripped). ``json``:
an object with ``line`` (string), optional ``ts`` (integer or float epoch in s/ms/µs/ns
by magnitude, a numeric string of ns as Loki's push API sends, or RFC 3339) and optional
``labels`` (string → string), merged over the configured labels; an object without
``line`` is itself the line. ``auto``: JSON when the value starts with ``{`` and parses,
text otherwise. Lines keep their bytes as sent (non-UTF-8 included); the timestamp falls
back to the record's Kafka timestamp.

**Bad input never stops the stream**: a null value (``null_payload``), a value that is not
the declared JSON (``invalid_json``), bad envelope labels (``invalid_labels``) or a line
over ``max_line_bytes`` (``line_too_long`` when ``oversize="drop"``; truncated and counted
by default) is dropped or kept with a counted reason, and its offset still advances.

**Sink.** :class:`KafkaSink` publishes each written row as a JSON object (``ts``,
``labels``, ``line``, and ``template_id``/``template``/``params`` when the parse stage added
them) to an output topic, keyed by the input's topic/partition (so one input partition's
records stay in order), and returns only when the broker acknowledged every record. It is
at-least-once: a write retried after a partial failure, or a range read again after a
crash, is published again (the store, which records offsets, keeps it once).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from logpipe.errors import PipelineError
from logpipe.labels import LABEL_NAME, format_labels
from logpipe.pipeline.api import AckToken, Chunk, DrainFn, Drops, ResumeFn, WriteResult
from logpipe.records import raw_batch

__all__ = [
    "KafkaSink",
    "KafkaSource",
    "KafkaSourceConfig",
    "decode_records",
    "parse_ts",
]

log = logging.getLogger(__name__)

PayloadKind = Literal["auto", "json", "text"]

#: Magnitudes that tell epoch units apart (seconds until year 5138, then ms, µs, ns).
_S_BELOW, _MS_BELOW, _US_BELOW = 10**11, 10**14, 10**17


@dataclass(frozen=True)
class KafkaSourceConfig:
    """How to consume and label. ``options`` go to ``KafkaConsumer`` unchanged (security
    settings, fetch sizes); they override the defaults chosen here."""

    bootstrap_servers: str | Sequence[str]
    topics: Sequence[str]
    group_id: str
    name: str = "kafka"
    labels: Mapping[str, str] = field(default_factory=dict)
    topic_label: str | None = "topic"
    partition_label: str | None = None
    header_labels: Mapping[str, str] = field(default_factory=dict)
    payload: PayloadKind = "auto"
    max_line_bytes: int = 1 << 20
    oversize: Literal["truncate", "drop"] = "truncate"
    max_poll_records: int = 20_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 30.0
    group_instance_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.topics:
            raise PipelineError("kafka source: name at least one topic")
        names = [*self.labels, *self.header_labels.values()]
        names += [n for n in (self.topic_label, self.partition_label) if n]
        for name in names:
            if not LABEL_NAME.fullmatch(name):
                raise PipelineError(f"kafka source: invalid label name {name!r}")
        if self.payload not in ("auto", "json", "text"):
            raise PipelineError(
                f"kafka source: payload must be auto, json or text, not {self.payload!r}"
            )
        if self.max_line_bytes < 1:
            raise PipelineError("kafka source: max_line_bytes must be positive")


def parse_ts(value: object) -> int | None:
    """An envelope's ``ts`` as int64 ns UTC, or None when it is not a time we can read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        magnitude = abs(value)
        scale = (
            10**9
            if magnitude < _S_BELOW
            else 10**6
            if magnitude < _MS_BELOW
            else 10**3
            if magnitude < _US_BELOW
            else 1
        )
        if isinstance(value, int):
            return value * scale
        try:  # whole and fractional parts apart: a float cannot hold 19 digits of ns
            whole = int(value)
        except (OverflowError, ValueError):
            return None
        return whole * scale + round((value - whole) * scale)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    return None


@dataclass
class Decoded:
    """Rows decoded from one partition's records (parallel lists) and what was dropped."""

    lines: list[bytes] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    drops: Drops = field(default_factory=Drops)
    truncated: int = 0
    bytes_in: int = 0


class _Labeler:
    """Label text per record, cached: most records share their partition's label set."""

    def __init__(self, config: KafkaSourceConfig) -> None:
        self.config = config
        self._cache: dict[tuple[Any, ...], str] = {}

    def base(self, topic: str, partition: int) -> dict[str, str]:
        labels = dict(self.config.labels)
        if self.config.topic_label:
            labels[self.config.topic_label] = topic
        if self.config.partition_label:
            labels[self.config.partition_label] = str(partition)
        return labels

    def text(
        self,
        topic: str,
        partition: int,
        headers: Sequence[tuple[str, bytes | None]] | None,
        extra: Mapping[str, str] | None,
    ) -> str:
        picked: tuple[tuple[str, str], ...] = ()
        if self.config.header_labels and headers:
            wanted = self.config.header_labels
            picked = tuple(
                (wanted[k], v.decode("utf-8", "replace"))
                for k, v in headers
                if k in wanted and v is not None
            )
        key = (topic, partition, picked, tuple(sorted(extra.items())) if extra else ())
        found = self._cache.get(key)
        if found is None:
            labels = self.base(topic, partition)
            labels.update(picked)
            if extra:
                labels.update(extra)
            found = format_labels(labels)
            if len(self._cache) > 10_000:  # bounded: envelope labels can be anything
                self._cache.clear()
            self._cache[key] = found
        return found


def _envelope_labels(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and LABEL_NAME.fullmatch(k) and isinstance(v, str)
        for k, v in value.items()
    ):
        return None
    return value


def decode_records(
    records: Iterable[Any], config: KafkaSourceConfig, labeler: _Labeler | None = None
) -> Decoded:
    """Kafka records (``ConsumerRecord``-like: topic, partition, offset, timestamp,
    value, headers) of one partition as rows; bad ones become counted drops."""
    labeler = labeler or _Labeler(config)
    out = Decoded()
    limit, truncate = config.max_line_bytes, config.oversize == "truncate"
    kind = config.payload
    plain: str | None = None
    for rec in records:
        value = rec.value
        if value is None:
            out.drops.add("null_payload")
            continue
        out.bytes_in += len(value)
        ts: int | None = None
        extra: dict[str, str] | None = None
        if kind != "text" and value[:1] == b"{":
            try:
                obj = json.loads(value)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "line" in obj:
                line_obj, ts, extra = obj["line"], parse_ts(obj.get("ts")), None
                if not isinstance(line_obj, str):
                    out.drops.add("invalid_json")
                    continue
                if "labels" in obj:
                    extra = _envelope_labels(obj["labels"])
                    if extra is None:
                        out.drops.add("invalid_labels")
                        continue
                value = line_obj.encode("utf-8", "surrogatepass")
            elif obj is None and kind == "json":
                out.drops.add("invalid_json")
                continue
        elif kind == "json":
            out.drops.add("invalid_json")
            continue
        if value[-1:] == b"\n":
            value = value[:-2] if value[-2:] == b"\r\n" else value[:-1]
        if len(value) > limit:
            if not truncate:
                out.drops.add("line_too_long")
                continue
            value = value[:limit]
            out.truncated += 1
        if extra is None and not (config.header_labels and rec.headers):
            if plain is None:
                plain = labeler.text(rec.topic, rec.partition, None, None)
            out.labels.append(plain)
        else:
            out.labels.append(labeler.text(rec.topic, rec.partition, rec.headers, extra))
        out.lines.append(value)
        out.ts.append(ts if ts is not None else rec.timestamp * 1_000_000)
        out.offsets.append(rec.offset)
    return out


def _batch(topic: str, partition: int, rows: Decoded) -> pa.RecordBatch:
    offsets = np.asarray(rows.offsets, dtype=np.int64)
    return raw_batch(
        pa.array(rows.lines, pa.binary()),
        source=topic,
        offsets=offsets,
        labels=pa.array(rows.labels, pa.string()),
        partition=partition,
        ts=np.asarray(rows.ts, dtype=np.int64),
        line_numbers=offsets + 1,
    )


@dataclass(frozen=True)
class _Token:
    tp: TopicPartition
    next_offset: int
    generation: int


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Drain and commit before partitions go; seek to the store's position when they come."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.source.on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.source.on_assigned(list(assigned))


class KafkaSource:
    """A :class:`~logpipe.pipeline.api.Source` over a Kafka consumer group.

    ``consumer_factory`` builds the consumer from keyword arguments (tests can wrap it);
    by default ``kafka.KafkaConsumer``.
    """

    def __init__(
        self,
        config: KafkaSourceConfig,
        *,
        consumer_factory: Callable[..., Any] = KafkaConsumer,
    ) -> None:
        self.config = config
        self.name = config.name
        self._factory = consumer_factory
        self._consumer: Any = None
        self._labeler = _Labeler(config)
        self._drain: DrainFn | None = None
        self._resume: ResumeFn | None = None
        self._lock = threading.Lock()
        self._acked: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._generation = 0
        self._last_commit = 0.0
        self._consumed: dict[TopicPartition, int] = {}
        self._backoff = 0.1
        self.errors: dict[str, int] = {}

    # -- Source protocol ----------------------------------------------------------------

    def open(self, drain: DrainFn, resume: ResumeFn) -> None:
        self._drain, self._resume = drain, resume
        c = self.config
        settings: dict[str, Any] = {
            "bootstrap_servers": c.bootstrap_servers,
            "group_id": c.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": c.max_poll_records,
            "session_timeout_ms": c.session_timeout_ms,
            "heartbeat_interval_ms": c.heartbeat_interval_ms,
            "fetch_max_bytes": 64 << 20,
            "max_partition_fetch_bytes": 16 << 20,
            "client_id": f"logpipe-{c.name}",
        }
        if c.group_instance_id:
            settings["group_instance_id"] = c.group_instance_id
        settings.update(c.options)
        self._consumer = self._factory(**settings)
        self._consumer.subscribe(topics=list(c.topics), listener=_Listener(self))

    def poll(self, timeout_s: float) -> list[Chunk]:
        try:
            fetched = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            self._transient("poll", exc)
            return []
        self._backoff = 0.1
        received = time.monotonic_ns()
        chunks = []
        for tp, records in fetched.items():
            if not records:
                continue
            rows = decode_records(records, self.config, self._labeler)
            first, last = records[0].offset, records[-1].offset
            self._consumed[tp] = last
            chunks.append(
                Chunk(
                    source=self.name,
                    key=(tp.topic, tp.partition),
                    batch=_batch(tp.topic, tp.partition, rows),
                    first=first,
                    last=last,
                    token=_Token(tp, last + 1, self._generation),
                    idempotent=True,
                    drops=rows.drops,
                    received_ns=received,
                    bytes_in=rows.bytes_in,
                    truncated=rows.truncated,
                )
            )
        return chunks

    def ack(self, tokens: Sequence[AckToken]) -> None:
        with self._lock:
            for token in tokens:
                if not isinstance(token, _Token) or token.generation != self._generation:
                    continue  # from before a rebalance: those partitions were committed then
                if token.next_offset > self._acked.get(token.tp, -1):
                    self._acked[token.tp] = token.next_offset

    def commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_commit < self.config.commit_interval_s:
            return
        with self._lock:
            todo = {tp: off for tp, off in self._acked.items() if self._committed.get(tp) != off}
        if not todo:
            return
        offsets = {tp: OffsetAndMetadata(off, "", -1) for tp, off in todo.items()}
        try:
            try:
                self._consumer.commit(offsets)
            except RuntimeError:
                # kafka-python 3 runs rebalance callbacks on its IO thread, where a blocking
                # commit is refused: commit without waiting. Should it be lost, the next owner
                # starts after the store's recorded offset anyway (on_assigned).
                self._consumer.commit_async(offsets)
        except CommitFailedError as exc:
            self._transient("commit", exc)  # rebalanced meanwhile: the new owner re-reads
            with self._lock:  # from the store's position, so nothing is lost or doubled
                for tp in todo:
                    self._acked.pop(tp, None)
            return
        except KafkaError as exc:
            self._transient("commit", exc)
            return
        self._last_commit = now
        self._committed.update(todo)

    def close(self) -> None:
        if self._consumer is None:
            return
        try:
            self.commit(force=True)
        finally:
            self._consumer.close(autocommit=False)
            self._consumer = None

    def lag(self) -> dict[tuple[str, int], int]:
        if self._consumer is None:
            return {}
        out = {}
        assigned = self._consumer.assignment()
        for tp, last in list(self._consumed.items()):
            if tp not in assigned:  # revoked meanwhile (a rebalance is under way)
                continue
            high = self._consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, high - last - 1)
        return out

    # -- rebalance ----------------------------------------------------------------------

    def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Everything emitted is written and acked, then committed, before they go."""
        if self._drain is not None and not self._drain(self.config.drain_timeout_s):
            log.warning("kafka %s: drain before revocation timed out", self.name)
        self.commit(force=True)
        with self._lock:
            self._generation += 1
            for tp in revoked:
                self._acked.pop(tp, None)
                self._committed.pop(tp, None)
                self._consumed.pop(tp, None)

    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Start each partition after the last offset the store holds, when it holds one:
        the commit may lag the store by one crash."""
        for tp in assigned:
            done = self._resume((tp.topic, tp.partition)) if self._resume else None
            if done is not None:
                self._consumer.seek(tp, done + 1)
        log.info("kafka %s: assigned %s", self.name, sorted(map(tuple, assigned)))

    def _transient(self, kind: str, exc: BaseException) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        log.warning("kafka %s: %s failed (%s); retrying", self.name, kind, exc)
        time.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, 5.0)


#: Columns a parse stage adds that the sink publishes when present.
_PARSED = ("template_id", "template", "params")


def _json_rows(table: pa.Table) -> Iterable[bytes]:
    """One JSON object per row: ``ts`` (int ns), ``labels`` (``{a="b"}``), ``line`` (text;
    bytes that are not UTF-8 as U+FFFD), plus the parse stage's columns when present."""
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    labels = table.column("labels").cast(pa.string()).to_pylist()
    if "content" in table.schema.names:
        text = table.column("content").to_pylist()
    else:
        text = [b.decode("utf-8", "replace") for b in table.column("line").to_pylist()]
    extra = [n for n in _PARSED if n in table.schema.names]
    extra_cols = {n: _plain(table.column(n)).to_pylist() for n in extra}
    for i, line in enumerate(text):
        row: dict[str, Any] = {"ts": ts[i], "labels": labels[i], "line": line}
        for n in extra:
            row[n] = extra_cols[n][i]
        yield json.dumps(row, ensure_ascii=False).encode("utf-8")


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column (the template) as its values."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


class KafkaSink:
    """Publishes written rows as JSON to ``topic`` (see the module docstring)."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        *,
        name: str = "kafka-out",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.topic = topic
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "acks": "all",
            "linger_ms": 5,
            "batch_size": 256 << 10,
        }
        settings.update(options or {})
        try:
            self._producer = KafkaProducer(**settings)
        except KafkaError as exc:
            raise PipelineError(
                f"kafka sink {name}: cannot reach {bootstrap_servers} ({exc}); check "
                "sinks.kafka[].bootstrap and that the broker is up"
            ) from exc

    def resume_offset(self, key: tuple[str, int]) -> int | None:
        """An output topic records no input offsets."""
        del key
        return None

    def write(
        self, key: tuple[str, int], table: pa.Table, span: tuple[int, int] | None
    ) -> WriteResult:
        del span
        result = WriteResult()
        if table.num_rows == 0:
            return result
        key_bytes = f"{key[0]}/{key[1]}".encode()
        futures = [
            self._producer.send(self.topic, value=v, key=key_bytes) for v in _json_rows(table)
        ]
        self._producer.flush()
        for f in futures:
            f.get(timeout=30)  # raises if the broker refused one: the runner retries all
        result.lines = table.num_rows
        result.bytes = int(pc.sum(pc.binary_length(table.column("line"))).as_py() or 0)
        return result

    def close(self) -> None:
        self._producer.close()
