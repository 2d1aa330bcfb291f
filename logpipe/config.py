"""The daemon's configuration: one TOML file, validated by pydantic, plus ``LOGPIPE_*`` overrides.

Why pydantic models with ``extra="forbid"``: a misspelt key (``topcis``) silently falling
back to a default is the classic way a daemon ends up consuming nothing; here it is an
error naming its dotted path (``sources.kafka[0].topcis: unknown key``), as Vector's config
does. Every error of a file is reported at once, not the first one only.

**Environment overrides.** A variable ``LOGPIPE_<SECTION>__<KEY>[__<KEY>...]`` sets one
key: the name after ``LOGPIPE_`` is lower-cased and split on double underscores; a numeric
part indexes a list (``LOGPIPE_SOURCES__KAFKA__0__GROUP=g2``). The value is read as a TOML
value when it is one (``3200``, ``true``, ``["a", "b"]``), else as a string. Overrides win
over the file. Variables without a double underscore (``LOGPIPE_SHARED_DATA``) are not
configuration and are ignored.

Units are in key names (``_secs``, ``_bytes``). Relative paths are relative to the working
directory the daemon starts in (systemd's ``WorkingDirectory``, the container's workdir).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from logpipe.errors import UsageError

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "AlertSinkConfig",
    "AlertmanagerAlertConfig",
    "Config",
    "ConfigError",
    "DetectConfig",
    "FilesSourceConfig",
    "KafkaAlertConfig",
    "KafkaSinkSettings",
    "KafkaSourceSettings",
    "LoggingConfig",
    "MultilineConfig",
    "ParseConfig",
    "ParseLLMConfig",
    "PipelineSettings",
    "ServerConfig",
    "SinksConfig",
    "SourcesConfig",
    "StdinSourceConfig",
    "StoreConfig",
    "WebhookAlertConfig",
    "env_overrides",
    "load_config",
    "parse_config",
]

ENV_PREFIX = "LOGPIPE_"
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_JAVA_CONTINUATION = r"^(?:[ \t]+|at |Caused by:|\.\.\. \d+ (?:more|common frames omitted))"


class ConfigError(UsageError):
    """A configuration that cannot be used; ``errors`` holds ``(dotted path, message)``."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = [f"{source}: {len(errors)} error(s)"]
        lines += [f"  {path}: {message}" if path else f"  {message}" for path, message in errors]
        super().__init__("\n".join(lines))


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Section):
    """Where the archive lives and how it is cut into segments."""

    root: str = Field(default=".run/store", description="Store directory (created when missing).")
    tenant: str = Field(
        default="fake", description="Tenant the sources write into (Loki's default)."
    )
    segment_bytes: int = Field(default=4 << 20, gt=0, description="Target size of one segment.")
    retention_secs: float | None = Field(
        default=None, gt=0, description="Delete data older than this (none: keep everything)."
    )
    compact_interval_secs: float = Field(
        default=10.0,
        ge=0,
        description="How often to look for small adjacent segments of a stream to merge "
        "(0: never); while there are some, one merge runs after each flush. Every flush "
        "writes a segment per stream; merging keeps the manifest, held in memory, "
        "proportional to the data rather than to the number of flushes.",
    )
    compact_target_bytes: int | None = Field(
        default=None, gt=0, description="Most raw bytes of a merged segment (none: segment_bytes)."
    )
    compact_max_span_secs: float = Field(
        default=3600.0,
        gt=0,
        description="Most time a merged segment spans (at most retention_secs / 10): "
        "retention deletes whole segments, so a line can outlive retention_secs by this.",
    )
    delete_delay_secs: float = Field(
        default=60.0,
        ge=0,
        description="Segment files that retention or compaction took out of the manifest "
        "are deleted this much later, so queries that started before can still read them.",
    )


class MultilineConfig(_Section):
    """Which lines continue the entry before them (default: Java/Python stack traces)."""

    continuation: str | None = Field(
        default=_JAVA_CONTINUATION, description="Regex of continuations."
    )
    start: str | None = Field(default=None, description="Regex of entry starts (others continue).")
    max_lines: int = Field(default=500, gt=0, description="Most lines joined into one entry.")
    max_bytes: int = Field(default=1 << 20, gt=0, description="Most bytes of one joined entry.")
    flush_after_secs: float = Field(
        default=1.0, gt=0, description="An entry waiting this long for continuations is sent."
    )


class FilesSourceConfig(_Section):
    """Tail files matching globs, with rotation handling and checkpoints."""

    name: str = Field(default="files", description="Source name (metrics, checkpoint file).")
    paths: list[str] = Field(min_length=1, description="Globs, re-expanded every rescan.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of every line.")
    filename_label: str | None = Field(
        default="filename", description="Label holding the file's path (none: no such label)."
    )
    multiline: MultilineConfig | None = Field(
        default=None, description="Join continuation lines (stack traces) into one entry."
    )
    checkpoint: str | None = Field(
        default=None,
        description="Checkpoint file (default: <store.root>/_checkpoints/<name>.json).",
    )
    start_at: Literal["beginning", "end"] = Field(
        default="beginning", description="Where a file without a checkpoint is read from."
    )
    rescan_secs: float = Field(
        default=1.0, gt=0, description="How often globs are expanded and files polled."
    )
    max_line_bytes: int = Field(
        default=1 << 20, gt=0, description="Longer lines are cut to this and counted."
    )

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


class KafkaSourceSettings(_Section):
    """Consume topics with a consumer group (at-least-once, no duplicates in the store)."""

    name: str = Field(default="kafka", description="Source name (metrics, logs).")
    bootstrap: str = Field(description="Bootstrap servers, host:port[,host:port...].")
    topics: list[str] = Field(min_length=1, description="Topics to consume.")
    group: str = Field(
        default="logpipe", description="Consumer group id: daemons sharing it split work."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of every line.")
    topic_label: str | None = Field(
        default="topic", description="Label holding the topic (none: no such label)."
    )
    payload: Literal["auto", "json", "text"] = Field(
        default="auto",
        description='JSON envelopes {"line", "ts", "labels"}, plain text, or auto-detect.',
    )
    max_line_bytes: int = Field(
        default=1 << 20, gt=0, description="Longer lines are cut to this and counted."
    )
    session_timeout_secs: float = Field(
        default=10.0, gt=0, description="Consumer group session timeout (failover time)."
    )
    max_poll_records: int = Field(
        default=20_000, gt=0, description="Most records one poll hands the pipeline."
    )
    instance_id: str | None = Field(default=None, description="Static group membership id.")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


class StdinSourceConfig(_Section):
    """Read lines from standard input (``some-app | logpipe serve``)."""

    name: str = Field(default="stdin", description="Source name (metrics, logs).")
    labels: dict[str, str] = Field(
        default_factory=dict, description='Labels of every line (none: {source="stdin"}).'
    )


class SourcesConfig(_Section):
    """Where lines come from (pushes to the API come too while the server is on)."""

    kafka: list[KafkaSourceSettings] = Field(default_factory=list)
    files: list[FilesSourceConfig] = Field(default_factory=list)
    stdin: StdinSourceConfig | None = None


class KafkaSinkSettings(_Section):
    """Publish every parsed record as JSON to a Kafka topic (at-least-once)."""

    name: str = Field(default="kafka-out", description="Sink name (metrics, logs).")
    bootstrap: str = Field(description="Bootstrap servers, host:port[,host:port...].")
    topic: str = Field(description="Output topic (records keyed by input topic/partition).")


class SinksConfig(_Section):
    """Where lines go besides the store (which always gets them)."""

    kafka: list[KafkaSinkSettings] = Field(default_factory=list)


class PipelineSettings(_Section):
    """Batching (flush whichever limit comes first) and the backpressure queue."""

    max_batch_lines: int = Field(default=50_000, gt=0, description="Flush at this many lines.")
    max_batch_bytes: int = Field(default=16 << 20, gt=0, description="Flush at this many bytes.")
    max_batch_age_secs: float = Field(
        default=1.0, gt=0, description="Flush when the oldest line waited this long."
    )
    queue_chunks: int = Field(
        default=64, gt=0, description="Chunks in flight before sources block."
    )
    drain_timeout_secs: float = Field(
        default=30.0, gt=0, description="At stop, how long a failing sink may hold the drain."
    )


class ParseLLMConfig(_Section):
    """The model behind ``parse.parser = "llm"`` and its call budget."""

    backend: Literal["local", "openai"] = Field(
        default="local",
        description="local: SmolLM2-135M on this machine; openai: an OpenAI-compatible "
        "chat endpoint.",
    )
    base_url: str | None = Field(
        default=None, description="openai: the API base URL, e.g. http://127.0.0.1:8000/v1."
    )
    model: str | None = Field(default=None, description="openai: the model name.")
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="openai: environment variable that holds the API key (unset: no key).",
    )
    timeout_secs: float = Field(default=30.0, gt=0, description="openai: per-call timeout.")
    max_calls_per_second: float = Field(
        default=10.0,
        ge=0,
        description="Model-call budget (token bucket; 0 = unlimited). Groups beyond it keep "
        "their statistical template and are asked about again later. A probe call takes "
        "~70-90 ms on a 2-core CPU, so 10/s holds the model under one core in a burst.",
    )
    burst: float = Field(default=8.0, ge=1, description="Calls the budget may make at once.")
    local_mode: Literal["probe", "score", "off"] = Field(
        default="probe",
        description="local: probe = a head trained on labelled templates of other systems "
        "marks constant tokens that are variables (one forward pass per new template); "
        "score = the untuned model's own preference, with local_margin; off = the model is "
        "not used (cache and merges only). See models/llm_parser/README.md.",
    )
    local_margin: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="local, score mode: nats by which the model must prefer <*> over a token "
        "to make it a variable (setting it selects the score mode; measured to lower "
        "accuracy).",
    )


class ParseConfig(_Section):
    """Online template mining in the pipeline (template id, template, params columns)."""

    parser: Literal["stat", "llm"] = Field(
        default="stat",
        description="stat: the statistical miner; llm: miner + parsing cache + checked "
        "model answers (see docs/PARSING.md).",
    )
    llm: ParseLLMConfig = Field(default_factory=ParseLLMConfig)

    enabled: bool = Field(default=True, description="Mine templates of every line.")
    state: str | None = Field(
        default=None,
        description="Template state file, checkpointed so ids survive restarts "
        "(default: <store.root>/_checkpoints/templates.json).",
    )
    max_clusters: int = Field(
        default=100_000, gt=0, description="Most templates kept (least recently used go)."
    )
    params: bool = Field(default=True, description="Extract each line's variable values.")


class ServerConfig(_Section):
    """The Loki-compatible HTTP API (plus /ready, /live, /metrics)."""

    enabled: bool = Field(default=True, description="Serve the API (and take pushes).")
    host: str = Field(default="127.0.0.1", description="Listen address (0.0.0.0: all).")
    port: int = Field(default=3100, ge=0, le=65535, description="Listen port (0: any free).")
    push_queue_bytes: int = Field(
        default=64 << 20,
        gt=0,
        description="Line bytes of pushes waiting for the pipeline before new ones get 429.",
    )
    push_timeout_secs: float = Field(
        default=30.0, gt=0, description="A queued push not taken by then is refused (503)."
    )


class LoggingConfig(_Section):
    """The daemon's own log, on standard error."""

    format: Literal["json", "text"] = Field(
        default="json", description="One JSON object per line, or plain text."
    )
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe level logged."
    )


class _HttpAlertSettings(_Section):
    """Delivery settings of the HTTP alert sinks (see ``logpipe.connectors.alerts``)."""

    url: str = Field(description="Receiver URL (http:// or https://).")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (an Authorization token)."
    )
    timeout_secs: float = Field(default=5.0, gt=0, description="Per attempt.")
    max_attempts: int = Field(default=3, ge=1, le=20, description="Tries per delivery.")
    backoff_secs: float = Field(
        default=0.5, ge=0, description="Wait after the first failure; doubles each time."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class WebhookAlertConfig(_HttpAlertSettings):
    """POST the alert JSON (docs/DETECT.md) to ``url``, one request per alert."""

    type: Literal["webhook"] = Field(description="This kind of alert sink.")
    name: str = Field(default="webhook", description="Sink name (metrics, logs).")


class AlertmanagerAlertConfig(_HttpAlertSettings):
    """POST alerts to Alertmanager's ``<url>/api/v2/alerts``."""

    type: Literal["alertmanager"] = Field(description="This kind of alert sink.")
    name: str = Field(default="alertmanager", description="Sink name (metrics, logs).")
    alertname: str = Field(default="LogAnomaly", min_length=1, description="Its alertname label.")
    severity: str = Field(default="warning", min_length=1, description="Its severity label.")
    resolve_after_secs: float = Field(
        default=300.0, gt=0, description="endsAt = this long after the window (or now)."
    )


class KafkaAlertConfig(_Section):
    """Publish the alert JSON to a Kafka topic, keyed by the window key."""

    type: Literal["kafka"] = Field(description="This kind of alert sink.")
    name: str = Field(default="kafka-alerts", description="Sink name (metrics, logs).")
    bootstrap: str = Field(description="Bootstrap servers, host:port[,host:port...].")
    topic: str = Field(min_length=1, description="Topic the alerts go to.")
    timeout_secs: float = Field(default=10.0, gt=0, description="Longest a send may block.")
    max_attempts: int = Field(default=3, ge=1, le=20, description="Tries per delivery.")


AlertSinkConfig = Annotated[
    WebhookAlertConfig | AlertmanagerAlertConfig | KafkaAlertConfig,
    Field(discriminator="type"),
]
_ALERT_TYPES = ("webhook", "alertmanager", "kafka")


class DetectConfig(_Section):
    """Online anomaly detection: windows scored by a trained model, alerts to sinks.

    Windows are tumbling ``window_secs`` per stream, or sessions keyed by the
    ``session_key`` regex (its first group, or whole match); give one of the two.
    """

    enabled: bool = Field(default=False, description="Score windows and send alerts.")
    model_dir: str | None = Field(
        default=None, description="Trained model directory (its config.json names the detector)."
    )
    window_secs: float | None = Field(default=None, gt=0, description="Tumbling window size.")
    session_key: str | None = Field(
        default=None, description=r"Regex of the session id in a line, e.g. 'blk_-?\d+'."
    )
    idle_secs: float = Field(
        default=30.0,
        gt=0,
        description="A session closes this long after its last event; a time window once "
        "its stream is this far past its end (the allowed lateness).",
    )
    max_open_windows: int = Field(
        default=10_000, gt=0, description="Windows open at once (more are dropped, counted)."
    )
    max_events_per_window: int = Field(
        default=2_000, gt=0, description="Events kept per window (more are counted)."
    )
    max_event_bytes: int = Field(default=4096, gt=0, description="Longer lines are cut.")
    queue_windows: int = Field(
        default=1024, gt=0, description="Closed windows waiting to be scored."
    )
    score_batch_windows: int = Field(
        default=64, gt=0, description="Closed windows scored in one call of the model."
    )
    queue_alerts: int = Field(
        default=1000, gt=0, description="Alerts waiting per sink before new ones fail."
    )
    top_edges: int = Field(default=5, ge=0, description="Edges named in each alert.")
    api_url: str | None = Field(
        default=None,
        description="Base URL of this daemon's API for the query links in alerts "
        "(default: from [server]).",
    )
    drain_timeout_secs: float = Field(
        default=10.0, gt=0, description="At stop, how long scoring and alerts may finish."
    )
    alerts: list[AlertSinkConfig] = Field(
        default_factory=list, description="Where alerts go ([[detect.alerts]], by type)."
    )

    @field_validator("session_key")
    @classmethod
    def _session_regex(cls, value: str | None) -> str | None:
        if value is not None:
            from logpipe.detect.online import session_key_regex  # noqa: PLC0415

            session_key_regex(value)
        return value


class Config(_Section):
    """The whole daemon configuration (``logpipe config schema`` prints its JSON Schema)."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    sinks: SinksConfig = Field(default_factory=SinksConfig)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    parse: ParseConfig = Field(default_factory=ParseConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)

    def source_names(self) -> list[str]:
        s = self.sources
        names = [k.name for k in s.kafka] + [f.name for f in s.files]
        return names + ([s.stdin.name] if s.stdin else [])


#: What ``logpipe serve`` runs without ``--config`` (and ``make run``): tail the sample logs
#: shipped in the repo into ``.run/store`` and serve the API on 127.0.0.1:3100.
DEFAULT_CONFIG_TOML = """\
[store]
root = ".run/store"

[[sources.files]]
name = "samples"
paths = ["samples/daemon/*.log"]
labels = { app = "webshop", env = "dev" }
multiline = {}

[server]
host = "127.0.0.1"
port = 3100
"""


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    import re  # noqa: PLC0415 - only when labels are configured

    bad = [k for k in value if not re.match(_LABEL_NAME, k)]
    if bad:
        raise ValueError(f"invalid label name(s) {bad}: use [a-zA-Z_][a-zA-Z0-9_]*")
    return value


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if i == 3 and loc[:2] == ("detect", "alerts") and part in _ALERT_TYPES:
            continue  # pydantic names the union member; the user's path has no such key
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def env_overrides(environ: Mapping[str, str]) -> list[tuple[list[str | int], Any, str]]:
    """``(path, value, variable)`` for every ``LOGPIPE_A__B`` variable (module docstring)."""
    out: list[tuple[list[str | int], Any, str]] = []
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        path: list[str | int] = [int(p) if p.isdigit() else p for p in parts]
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.append((path, value, var))
    return out


def _apply(data: dict[str, Any], path: list[str | int], value: Any) -> str | None:
    """Set ``path`` in ``data``; an error message when the path cannot exist."""
    node: Any = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part > len(node):
                return f"no list item {part} to set"
            if part == len(node):
                node.append(value if last else {})
            elif last:
                node[part] = value
            node = node[part]
            continue
        if not isinstance(node, dict):
            return f"{part!r} is not a table"
        if last:
            node[part] = value
        else:
            nxt = path[i + 1]
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    return None


def parse_config(
    text: str, *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate TOML ``text`` (with ``environ``'s overrides); raise :class:`ConfigError`
    listing every problem with its dotted path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("", f"not valid TOML: {exc}")]) from exc
    errors: list[tuple[str, str]] = []
    origin: dict[str, str] = {}
    for path, value, var in env_overrides(os.environ if environ is None else environ):
        why = _apply(data, path, value)
        origin[_dotted(tuple(path))] = var
        if why is not None:
            errors.append((_dotted(tuple(path)), f"{why} (from {var})"))
    if errors:
        raise ConfigError(source, errors)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            where = _dotted(tuple(err["loc"]))
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "value_error" and "error" in err.get("ctx", {}):
                message = str(err["ctx"]["error"])  # without pydantic's "Value error, "
            elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                where += ".type"
                missing = err["type"] == "union_tag_not_found"
                message = (
                    ("required: " if missing else "must be ") + "one of " + ", ".join(_ALERT_TYPES)
                )
            env_var = origin.get(where)
            errors.append((where, f"{message} (from {env_var})" if env_var else message))
        raise ConfigError(source, errors) from None
    names = config.source_names() + (["push"] if config.server.enabled else [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(
            ("sources", f"source names must be unique (pushes to the API are 'push'): {dupes}")
        )
    sinks = ["store", *(k.name for k in config.sinks.kafka)]
    dupes = sorted({n for n in sinks if sinks.count(n) > 1})
    if dupes:
        errors.append(("sinks", f"sink names must be unique (the store is 'store'): {dupes}"))
    errors += _detect_errors(config.detect)
    if errors:
        raise ConfigError(source, errors)
    return config


def _detect_errors(detect: DetectConfig) -> list[tuple[str, str]]:
    """What pydantic cannot see key by key: the keys of ``[detect]`` that go together."""
    errors: list[tuple[str, str]] = []
    if detect.window_secs is not None and detect.session_key is not None:
        errors.append(("detect.session_key", "give window_secs or session_key, not both"))
    if detect.enabled:
        if detect.model_dir is None:
            errors.append(("detect.model_dir", "required when detect.enabled is true"))
        if detect.window_secs is None and detect.session_key is None:
            errors.append(
                ("detect.window_secs", "required when detect.enabled is true (or session_key)")
            )
    names = [a.name for a in detect.alerts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(("detect.alerts", f"alert sink names must be unique: {dupes}"))
    return errors


def load_config(path: str | os.PathLike[str] | None, *, environ: Mapping[str, str] | None = None
                ) -> Config:  # fmt: skip
    """The config in ``path`` (None: the embedded default), with env overrides applied."""
    if path is None:
        return parse_config(DEFAULT_CONFIG_TOML, source="<embedded default>", environ=environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [("", f"cannot read: {exc}")]) from exc
    return parse_config(text, source=str(path), environ=environ)
