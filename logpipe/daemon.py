"""``logpipe serve``: the pipeline and the Loki API in one process, built from a :class:`Config`.

Shape: sources (the configured ones, plus pushes to the API) → the parse stage (template
ids) → :class:`StoreSink` (and any configured Kafka sink) on the pipeline's threads; uvicorn
on a background thread serving the same store (queries see what the pipeline wrote as soon
as a flush returns); compaction of small segments between flushes and a retention thread
(:mod:`logpipe.store.maintenance`). ``/ready`` and
``/live`` answer from the pipeline's :class:`Health`, and ``/metrics`` serves the
pipeline's and the API's metrics from one registry.

Stopping: SIGTERM or SIGINT asks the pipeline to drain (every line read is written and
its position committed), then the API stops after finishing in-flight requests. A clean
drain exits 0; a part that failed for good exits 1.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.config import (
    AlertmanagerAlertConfig,
    AlertSinkConfig,
    Config,
    FilesSourceConfig,
    KafkaSourceSettings,
    ServerConfig,
    WebhookAlertConfig,
)
from logpipe.errors import PipelineError, UsageError
from logpipe.signals import drain_on_signals

if TYPE_CHECKING:
    from collections.abc import Mapping

    from logpipe.detect.alert import AlertSink
    from logpipe.detect.loading import Loader
    from logpipe.detect.stage import DetectStage
    from logpipe.pipeline import Pipeline, PipelineMetrics, Sink, Source, Stage
    from logpipe.server.pushqueue import PushTarget
    from logpipe.server.runner import BackgroundServer
    from logpipe.store import Store
    from logpipe.store.maintenance import Compactor, Maintenance

__all__ = [
    "Daemon",
    "build_detect_stage",
    "build_pipeline",
    "build_sinks",
    "build_sources",
    "build_stages",
    "next_steps",
    "template_state_path",
]

log = logging.getLogger("logpipe.daemon")


def _file_source(cfg: FilesSourceConfig, store_root: str) -> Source:
    from logpipe.connectors.files import FileSource, FileSourceConfig, MultilineRule  # noqa: PLC0415

    rule = None
    if cfg.multiline is not None:
        m = cfg.multiline
        rule = MultilineRule(continuation=m.continuation, start=m.start, max_lines=m.max_lines,
                             max_bytes=m.max_bytes, flush_after_s=m.flush_after_secs)  # fmt: skip
    checkpoint = cfg.checkpoint or str(Path(store_root) / "_checkpoints" / f"{cfg.name}.json")
    source: Source = FileSource(
        FileSourceConfig(
            paths=cfg.paths,
            checkpoint=checkpoint,
            name=cfg.name,
            labels=dict(cfg.labels),
            filename_label=cfg.filename_label,
            multiline=rule,
            max_line_bytes=cfg.max_line_bytes,
            start_at=cfg.start_at,
            rescan_s=cfg.rescan_secs,
        )
    )
    return source


def _kafka_source(cfg: KafkaSourceSettings) -> Source:
    from logpipe.connectors.kafka import KafkaSource, KafkaSourceConfig  # noqa: PLC0415

    session_ms = int(cfg.session_timeout_secs * 1000)
    source: Source = KafkaSource(
        KafkaSourceConfig(
            bootstrap_servers=cfg.bootstrap,
            topics=cfg.topics,
            group_id=cfg.group,
            name=cfg.name,
            labels=dict(cfg.labels),
            topic_label=cfg.topic_label,
            payload=cfg.payload,
            max_line_bytes=cfg.max_line_bytes,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 4),
            group_instance_id=cfg.instance_id,
            max_poll_records=cfg.max_poll_records,
        )
    )
    return source


def build_sources(config: Config) -> list[Source]:
    """One source per configured entry (Kafka's client is imported only when used)."""
    sources = [_kafka_source(k) for k in config.sources.kafka]
    sources += [_file_source(f, config.store.root) for f in config.sources.files]
    if config.sources.stdin is not None:
        from logpipe.connectors.stdin import StdinSource, StdinSourceConfig  # noqa: PLC0415

        cfg = config.sources.stdin
        labels = dict(cfg.labels) or {"source": "stdin"}
        sources.append(StdinSource(StdinSourceConfig(name=cfg.name, labels=labels)))
    return sources


def _alert_sink(cfg: AlertSinkConfig) -> AlertSink:
    from logpipe.connectors.alerts import (  # noqa: PLC0415
        AlertmanagerSink,
        KafkaAlertSink,
        RetryPolicy,
        WebhookSink,
    )

    if isinstance(cfg, WebhookAlertConfig | AlertmanagerAlertConfig):
        retry = RetryPolicy(timeout_s=cfg.timeout_secs, max_attempts=cfg.max_attempts,
                            backoff_s=cfg.backoff_secs)  # fmt: skip
        if isinstance(cfg, WebhookAlertConfig):
            webhook: AlertSink = WebhookSink(cfg.url, name=cfg.name, headers=cfg.headers,
                                             retry=retry)  # fmt: skip
            return webhook
        manager: AlertSink = AlertmanagerSink(
            cfg.url, name=cfg.name, alertname=cfg.alertname, severity=cfg.severity,
            resolve_after_s=cfg.resolve_after_secs, headers=cfg.headers, retry=retry,
        )  # fmt: skip
        return manager
    retry = RetryPolicy(timeout_s=cfg.timeout_secs, max_attempts=cfg.max_attempts)
    kafka: AlertSink = KafkaAlertSink(cfg.bootstrap, cfg.topic, name=cfg.name, retry=retry)
    return kafka


def _api_url(server: ServerConfig) -> str:
    """Where people reach this daemon's API, for the query links in alerts (a wildcard
    listen address becomes the host name, as Prometheus builds its external URL)."""
    if not server.enabled:
        return ""
    host = server.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def build_detect_stage(
    config: Config, metrics: PipelineMetrics, *, detectors: Mapping[str, Loader] | None = None
) -> DetectStage | None:
    """The online detection stage of ``config.detect`` (None when disabled).

    Loads the model now, so a bad ``model_dir`` stops the daemon at start with a
    :class:`~logpipe.errors.ModelError` rather than running without detection.
    ``detectors`` replaces the detector registry (tests).
    """
    d = config.detect
    if not d.enabled or d.model_dir is None:
        return None
    from logpipe.detect.loading import DETECTORS, load_detector  # noqa: PLC0415
    from logpipe.detect.stage import DetectSettings, DetectStage  # noqa: PLC0415
    from logpipe.pipeline.metrics import DetectMetrics  # noqa: PLC0415

    detector = load_detector(d.model_dir, detectors=DETECTORS if detectors is None else detectors)
    settings = DetectSettings(
        window_secs=d.window_secs,
        session_key=d.session_key,
        idle_secs=d.idle_secs,
        max_open_windows=d.max_open_windows,
        max_events_per_window=d.max_events_per_window,
        max_event_bytes=d.max_event_bytes,
        queue_windows=d.queue_windows,
        score_batch_windows=d.score_batch_windows,
        queue_alerts=d.queue_alerts,
        top_edges=d.top_edges,
        api_url=d.api_url if d.api_url is not None else _api_url(config.server),
        drain_timeout_secs=d.drain_timeout_secs,
    )
    sinks = [_alert_sink(a) for a in d.alerts]
    if not sinks:
        log.warning("detect: no [[detect.alerts]] sinks; anomalies are only logged and counted")
    log.info("detect: model %s (%s), %s", d.model_dir, getattr(detector, "name", "?"),
             f"time windows of {d.window_secs} s" if d.session_key is None
             else f"sessions by {d.session_key!r}")  # fmt: skip
    return DetectStage(detector, sinks, settings, metrics=DetectMetrics(metrics.registry))


def build_pipeline(
    config: Config,
    store: Store,
    extra_sources: Sequence[Source] = (),
    *,
    detectors: Mapping[str, Loader] | None = None,
) -> Pipeline | None:
    """The pipeline of ``config`` writing into ``store``, with ``extra_sources`` (the push
    source) besides the configured ones (None: no source at all); with ``[detect]``
    enabled, the detection stage runs on every batch after the parse stage."""
    from logpipe.pipeline import BatchLimits, Pipeline, PipelineMetrics, StoreSink  # noqa: PLC0415

    if not config.source_names() and not extra_sources:
        if config.detect.enabled:
            log.warning("detect: enabled, but no sources are configured: nothing to score")
        return None
    metrics = PipelineMetrics()
    detect = build_detect_stage(config, metrics, detectors=detectors)  # fails before sources
    sources = build_sources(config) + list(extra_sources)
    p = config.pipeline
    limits = BatchLimits(max_lines=p.max_batch_lines, max_bytes=p.max_batch_bytes,
                         max_age_s=p.max_batch_age_secs)  # fmt: skip
    sinks: list[Sink] = [StoreSink(store, config.store.tenant, compactor=_compactor(config, store))]
    sinks += build_sinks(config)
    stages = build_stages(config) + ([detect] if detect is not None else [])
    return Pipeline(sources, stages, sinks, limits=limits, queue_chunks=p.queue_chunks,
                    drain_timeout_s=p.drain_timeout_secs, metrics=metrics)  # fmt: skip


def _compactor(config: Config, store: Store) -> Compactor | None:
    """Merging small segments between flushes, from ``[store]`` (None: switched off)."""
    from logpipe.store.maintenance import CompactionPolicy, Compactor  # noqa: PLC0415

    cfg = config.store
    if not cfg.compact_interval_secs:
        return None
    policy = CompactionPolicy(every_secs=cfg.compact_interval_secs,
                              target_bytes=cfg.compact_target_bytes,
                              max_span_secs=cfg.compact_max_span_secs,
                              retention_secs=cfg.retention_secs)  # fmt: skip
    return Compactor(store, policy)


def build_sinks(config: Config) -> list[Sink]:
    """The configured sinks besides the store (Kafka's client imported only when used)."""
    if not config.sinks.kafka:
        return []
    from logpipe.connectors.kafka import KafkaSink  # noqa: PLC0415

    out: list[Sink] = []
    for cfg in config.sinks.kafka:
        sink: Sink = KafkaSink(cfg.bootstrap, cfg.topic, name=cfg.name)
        out.append(sink)
    return out


def template_state_path(config: Config) -> Path:
    """Where the parse stage keeps its template state."""
    state = config.parse.state
    return Path(state) if state else Path(config.store.root) / "_checkpoints" / "templates.json"


def build_stages(config: Config) -> list[Stage]:
    """The parse stage unless ``parse.enabled`` is false (detection, when on, comes after
    it and reads its template columns)."""
    if not config.parse.enabled:
        return []
    from logpipe.pipeline import ParseStage  # noqa: PLC0415

    cfg = config.parse
    llm_config = llm_backend = None
    if cfg.parser == "llm":
        from logpipe.parsing.llm import LLMParserConfig  # noqa: PLC0415
        from logpipe.parsing.llm_backends import make_backend  # noqa: PLC0415

        llm = cfg.llm
        llm_backend = make_backend(llm.backend, base_url=llm.base_url, model=llm.model,
                                   api_key_env=llm.api_key_env,
                                   timeout_s=llm.timeout_secs,
                                   local_mode=llm.local_mode,
                                   local_margin=llm.local_margin)  # fmt: skip
        llm_config = LLMParserConfig(max_calls_per_second=llm.max_calls_per_second,
                                     burst=llm.burst)  # fmt: skip
    stage = ParseStage.resume(template_state_path(config), max_clusters=cfg.max_clusters,
                              params=cfg.params, llm_config=llm_config,
                              llm_backend=llm_backend)  # fmt: skip
    return [stage]


def _selector(config: Config) -> str:
    """A stream selector that matches what the first source writes."""
    s = config.sources
    configured = [k.labels for k in s.kafka] + [f.labels for f in s.files]
    labels = next((dict(x) for x in configured if x), {})
    if labels:
        name, value = next(iter(labels.items()))
        return f'{{{name}="{value}"}}'
    if s.kafka and s.kafka[0].topic_label:
        return f'{{{s.kafka[0].topic_label}="{s.kafka[0].topics[0]}"}}'
    return '{filename=~".+"}'


def next_steps(url: str, config: Config) -> str:
    """What to try once the daemon is up (printed on start)."""
    lines = [f"logpipe is serving Loki's API on {url}", "", "Try:"]
    if any(f.name == "samples" for f in config.sources.files):
        lines += [
            '  logpipe query \'{app="webshop"} |= "ERROR"\' --addr '
            f"{url} --from 2024-03-05T00:00:00Z --to 2024-03-06T00:00:00Z",
            "  logpipe query 'sum by (filename) (count_over_time({app=\"webshop\"} [1h]))' "
            f"--addr {url} --from 2024-03-05T00:00:00Z --to 2024-03-06T00:00:00Z",
            "  (the sample logs are from 2024-03-05: widen Grafana's time range to see them)",
        ]
    else:
        lines.append(f"  logpipe query '{_selector(config)}' --addr {url} --since 1h")
    lines += [
        f"  curl -s {url}/ready ; curl -s {url}/metrics | grep logpipe_sink_lines",
        f"  Grafana: add a Loki data source with URL {url}",
        "    (or provision deploy/grafana/datasources/logpipe.yaml)",
        '  logpipe ask "..."  (natural-language questions: coming with the nl2logql model)',
        "",
        "Stop with Ctrl-C (drains: every line read is stored before exit).",
    ]
    return "\n".join(lines)


class Daemon:
    """Everything ``logpipe serve`` runs; :meth:`run` blocks until a signal or a failure."""

    def __init__(self, config: Config) -> None:
        from logpipe.store import Store  # noqa: PLC0415 - pyarrow only when serving

        self.config = config
        Path(config.store.root).mkdir(parents=True, exist_ok=True)
        self.store = Store(config.store.root, segment_bytes=config.store.segment_bytes,
                           delete_delay_s=config.store.delete_delay_secs)  # fmt: skip
        self.push: PushTarget | None = None
        extra: list[Source] = []
        if config.server.enabled:  # pushes to the API go through the pipeline
            from logpipe.connectors.push import PushSource  # noqa: PLC0415

            push = PushSource(max_queued_bytes=config.server.push_queue_bytes)
            self.push = push
            extra.append(push)
        self.pipeline = build_pipeline(config, self.store, extra)
        self._stop = threading.Event()
        self.url: str | None = None

    def stop(self) -> None:
        """Ask for a graceful drain (what SIGTERM/SIGINT do)."""
        self._stop.set()
        if self.pipeline is not None:
            self.pipeline.stop()

    def run(self, on_started: Callable[[str | None], None] | None = None) -> None:
        """Serve and ingest until :meth:`stop` or a signal; raise PipelineError on failure."""
        with drain_on_signals(self.stop, log):
            server = self._start_server()
            upkeep = threading.Thread(target=self._maintenance().run, args=(self._stop,),
                                      name="logpipe-store-upkeep", daemon=True)  # fmt: skip
            try:
                if self.pipeline is not None:
                    self.pipeline.start()
                upkeep.start()
                log.info("started", extra={"url": self.url or "", "store": self.config.store.root})
                if on_started is not None:
                    on_started(self.url)
                self._wait()
            finally:
                self._stop.set()
                if server is not None:
                    server.stop()
        if self.pipeline is not None and self.pipeline.error is not None:
            err = self.pipeline.error
            raise PipelineError(f"pipeline stopped: {err}") from err
        log.info("stopped cleanly")

    def _wait(self) -> None:
        if self.pipeline is None:
            while not self._stop.wait(0.5):
                pass
            return
        while not self.pipeline.join(0.5):
            pass

    def _start_server(self) -> BackgroundServer | None:
        cfg = self.config.server
        if not cfg.enabled:
            return None
        from logpipe.server.app import create_app  # noqa: PLC0415 - FastAPI only when serving
        from logpipe.server.metrics import ServerMetrics  # noqa: PLC0415
        from logpipe.server.runner import BackgroundServer  # noqa: PLC0415

        p = self.pipeline
        metrics = ServerMetrics.create(p.metrics.registry if p is not None else None)
        app = create_app(self.store, metrics=metrics, health=p.health if p else None,
                         push=self.push, push_timeout_s=cfg.push_timeout_secs)  # fmt: skip
        try:
            server = BackgroundServer(app, cfg.host, cfg.port)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}; is another logpipe "
                "running? Choose another port (server.port, or LOGPIPE_SERVER__PORT=3200)"
            ) from exc
        self.url = server.start()
        return server

    def _maintenance(self) -> Maintenance:
        """Retention (``store.retention_secs``, once a minute) and the deletion of retired
        segment files, on a background thread (compaction runs between flushes)."""
        from logpipe.store.maintenance import Maintenance  # noqa: PLC0415

        return Maintenance(self.store, self.config.store.retention_secs)
