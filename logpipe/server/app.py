"""The FastAPI app: Loki's HTTP API (paths, parameters, JSON shapes) over a log store.

Routes (``GET`` and ``POST`` where Loki takes both; a POST may send its parameters as a
form body)::

    /loki/api/v1/query              instant query           {"status", "data": {resultType...}}
    /loki/api/v1/query_range        range query             same
    /loki/api/v1/labels             label names             {"status", "data": [names]}
    /loki/api/v1/label/{name}/values                        {"status", "data": [values]}
    /loki/api/v1/series             streams of match[]      {"status", "data": [{labels}]}
    /loki/api/v1/index/stats        {"streams", "chunks", "entries", "bytes"}
    /loki/api/v1/push               JSON or protobuf+snappy; 204 (429/503 + Retry-After
                                    when a daemon's push queue is full or its store fails)
    /loki/api/v1/format_query       the query in canonical spelling
    /loki/api/v1/status/buildinfo   what Grafana asks first
    /api/v1/ask                     POST {"question"}: validated LogQL and its answer
                                    (logpipe's own; see logpipe/server/ask.py)
    /ready, /live, /metrics, /openapi.json

Tenants come from ``X-Scope-OrgID`` (default ``fake``, Loki's tenant without auth) and
never see each other's data.

Errors, as Loki answers them, in plain text: a LogQL error (syntax, validation, a query
limit) is 400 with its message, which names line and column; a bad parameter or push body
is 400 naming what is wrong; a store failure is 500 with its message; anything unexpected is
500 with one line (the traceback goes to the log, never to the client). The server keeps
serving whatever a request contains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qsl

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from logpipe import __version__
from logpipe.errors import LogQLError, ModelError, StoreError, UsageError
from logpipe.logql import format_query, parse
from logpipe.logql.engine import Engine, QueryLimits
from logpipe.logql.gotemplate import TemplateError
from logpipe.logql.results import QueryResult, to_loki_json
from logpipe.pipeline.health import Health
from logpipe.server.ask import ASK_DOC, MAX_ASK_BODY_BYTES, parse_ask_body
from logpipe.server.jsonbody import encode_body
from logpipe.server.metrics import ServerMetrics
from logpipe.server.params import (
    ParameterError,
    Params,
    parse_bounds,
    parse_instant,
    parse_range,
)
from logpipe.server.push import DEFAULT_MAX_PUSH_BYTES, PushError, decode_push, to_batch
from logpipe.server.pushqueue import PushBusyError, PushTarget, PushUnavailableError
from logpipe.server.selectors import Selector, selectors
from logpipe.store import DEFAULT_TENANT, Store, validate_tenant
from logpipe.store.store import MAX_TS_NS

if TYPE_CHECKING:
    from logpipe.nl.ask import Asker

__all__ = ["LOKI_API_VERSION", "QueryEngine", "create_app"]

log = logging.getLogger("logpipe.server")

#: The Loki version ``buildinfo`` reports. Grafana and logcli read it to decide which
#: requests a server understands; 2.9 is the API generation this server implements
#: (``index/stats``, ``format_query``; not ``index/volume``, patterns or detected fields).
LOKI_API_VERSION = "2.9.0"
TENANT_HEADER = "X-Scope-OrgID"
_T = TypeVar("_T")


class QueryEngine(Protocol):
    """What the API needs of an engine: :class:`~logpipe.logql.engine.Engine`'s two calls."""

    def query_range(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        step_ns: int | None = None,
        tenant: str = DEFAULT_TENANT,
        direction: str = "backward",
        limit: int = 100,
    ) -> QueryResult: ...

    def query_instant(
        self,
        query: str,
        *,
        time_ns: int,
        tenant: str = DEFAULT_TENANT,
        direction: str = "backward",
        limit: int = 100,
    ) -> QueryResult: ...


@dataclass(frozen=True)
class _Context:
    store: Store
    engine: QueryEngine
    metrics: ServerMetrics
    clock: Callable[[], int]
    max_push_bytes: int
    health: Health | None = None
    asker: Asker | None = None
    push: PushTarget | None = None
    push_timeout_s: float = 30.0


# --------------------------------------------------------------------------- helpers


def _json(body: Any, status: int = 200) -> Response:
    return Response(encode_body(body), status_code=status, media_type="application/json")


def _tenant(request: Request) -> str:
    raw = request.headers.get(TENANT_HEADER)
    if raw is None or raw == "":
        return DEFAULT_TENANT
    try:
        return validate_tenant(raw.strip())
    except StoreError as exc:
        raise ParameterError(TENANT_HEADER, str(exc)) from None


async def _params(request: Request) -> Params:
    """Query-string parameters, plus form-body ones for a POST (which come first, as in
    Go's ``Request.Form``)."""
    values: dict[str, list[str]] = {}
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            body = await request.body()
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                values.setdefault(key, []).append(value)
    for key, value in request.query_params.multi_items():
        values.setdefault(key, []).append(value)
    return Params(values)


def _selectors_of(texts: list[str]) -> list[Selector]:
    found: list[Selector] = []
    for text in texts:
        for selector in selectors(text):
            if selector not in found:
                found.append(selector)
    return found


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (400) once it grows past ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PushError(f"body is {declared} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PushError(f"body is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- OpenAPI

_PARAM_DOCS = {
    "query": "LogQL query.",
    "time": "Evaluation time: unix ns, unix seconds (float) or RFC3339. Default: now.",
    "start": "Start of the range (inclusive): unix ns, seconds or RFC3339. Default: end - since.",
    "end": "End of the range: unix ns, seconds or RFC3339. Default: now.",
    "since": "Duration before end used when start is absent (default 1h).",
    "step": "Resolution of metric queries: seconds or a duration (15s). Default: range/250.",
    "interval": "Accepted for compatibility; log queries return every entry.",
    "limit": "Maximum entries of a log query (default 100).",
    "direction": "forward (oldest first) or backward (newest first, default).",
    "match[]": "Stream selector; repeat for several (results are ORed).",
}


def _doc(*names: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {"type": "array", "items": {"type": "string"}}
            if name.endswith("[]")
            else {"type": "string"},
            "description": _PARAM_DOCS[name],
        }
        for name in names
    ]
    params.append(
        {
            "name": TENANT_HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "default": DEFAULT_TENANT},
            "description": "Tenant id; each tenant's data is separate.",
        }
    )
    return {"parameters": params}


_PUSH_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "example": {
                        "streams": [
                            {"stream": {"app": "api"}, "values": [["1700000000000000000", "hello"]]}
                        ]
                    },
                }
            },
            "application/x-protobuf": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "logproto.PushRequest, snappy block format",
                }
            },
        },
    },
    "responses": {"204": {"description": "Stored."}, "400": {"description": "Bad body."}},
}


# --------------------------------------------------------------------------- middleware


class _Guard:
    """Counts every request by route template and status, and is the last line of defence:
    an exception no handler took becomes a one-line 500 (traceback to the log only)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False

        async def observe(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except Exception as exc:  # any bug must cost one request, not the server
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                body = f"internal error: {type(exc).__name__}: {exc}".encode()
                headers = [(b"content-type", b"text/plain; charset=utf-8")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            status = 500
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()


def _text_handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, NotImplementedError):
            message = f"not implemented in this version of logpipe: {message}"
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, message)
        return PlainTextResponse(message, status_code=status)

    return handle


async def _template_handler(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"invalid template in the query: {exc}", status_code=400)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors]
    return PlainTextResponse("invalid request: " + "; ".join(parts), status_code=400)


# --------------------------------------------------------------------------- the app


def create_app(
    store: Store,
    *,
    engine: QueryEngine | None = None,
    limits: QueryLimits | None = None,
    clock: Callable[[], int] = time.time_ns,
    metrics: ServerMetrics | None = None,
    max_push_bytes: int = DEFAULT_MAX_PUSH_BYTES,
    health: Health | None = None,
    asker: Asker | None = None,
    push: PushTarget | None = None,
    push_timeout_s: float = 30.0,
) -> FastAPI:
    """Loki's API over ``store``, answering queries with ``engine`` (an
    :class:`~logpipe.logql.engine.Engine` on the store by default).

    ``limits`` configure the default engine (which checks them: entries, series, points,
    range, time; over one is HTTP 400); ``clock`` (unix ns) is what "now" means for default
    times (tests pin it); ``metrics`` may share a registry with the rest of a daemon (the
    daemon passes its pipeline's registry, so ``/metrics`` serves both). With ``health`` (a
    daemon's pipeline), ``/ready`` and ``/live`` answer from it as Kubernetes probes expect;
    without, ``/ready`` checks that the store is readable and ``/live`` is always 200.
    ``asker`` answers ``/api/v1/ask`` (default: an :class:`~logpipe.nl.ask.Asker` on the
    store and engine, with no examples of its own and the adapter found as
    :func:`~logpipe.nl.backends.find_adapter` finds it).
    With ``push`` (a daemon's push source), pushes go through the daemon's pipeline and are
    answered once written, or refused with 429/503 and ``Retry-After`` when it cannot take
    them (``push_timeout_s``: how long a queued push may wait before it is withdrawn).
    """
    if engine is None:
        engine = Engine(store, limits=limits)
    if asker is None:
        from logpipe.nl.ask import Asker  # noqa: PLC0415
        from logpipe.nl.backends import find_adapter  # noqa: PLC0415

        asker = Asker(store, engine, adapter=find_adapter(), clock=clock)
    ctx = _Context(
        store=store,
        engine=engine,
        metrics=metrics or ServerMetrics.create(),
        clock=clock,
        max_push_bytes=max_push_bytes,
        health=health,
        asker=asker,
        push=push,
        push_timeout_s=push_timeout_s,
    )
    app = FastAPI(
        title="logpipe",
        summary="Grafana Loki's HTTP API over logpipe's log store.",
        version=__version__,
        docs_url=None,  # the docs pages load scripts from a CDN; the schema is enough
        redoc_url=None,
    )
    app.add_middleware(_Guard, metrics=ctx.metrics)
    app.add_exception_handler(LogQLError, _text_handler(400))
    # A line_format/label_format template that does not compile is the query's fault. The
    # validator now reports it as a LogQLError; this stays for any template compiled later.
    app.add_exception_handler(TemplateError, _template_handler)
    app.add_exception_handler(UsageError, _text_handler(400))
    app.add_exception_handler(PushError, _text_handler(400))
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StoreError, _text_handler(500))
    app.add_exception_handler(ModelError, _text_handler(503))  # the model backend cannot load
    app.add_exception_handler(NotImplementedError, _text_handler(501))
    _query_routes(app, ctx)
    _metadata_routes(app, ctx)
    _push_route(app, ctx)
    _ask_route(app, ctx)
    _service_routes(app, ctx)
    return app


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Response]])


def _get_post(
    app: FastAPI, path: str, *, summary: str, openapi_extra: dict[str, Any]
) -> Callable[[_Handler], _Handler]:
    """Register a handler for GET and POST (as Loki serves its read routes), with one
    OpenAPI operation id per method."""

    def register(handler: _Handler) -> _Handler:
        for method in ("GET", "POST"):
            app.add_api_route(
                path,
                handler,
                methods=[method],
                response_class=Response,
                summary=summary,
                openapi_extra=openapi_extra,
                operation_id=f"{handler.__name__}_{method.lower()}",
            )
        return handler

    return register


async def _timed(ctx: _Context, route: str, call: Callable[[], _T]) -> _T:
    started = time.perf_counter()
    try:
        return await run_in_threadpool(call)
    finally:
        ctx.metrics.query_seconds.labels(route).observe(time.perf_counter() - started)


def _query_routes(app: FastAPI, ctx: _Context) -> None:
    @_get_post(
        app,
        "/loki/api/v1/query",
        openapi_extra=_doc("query", "time", "limit", "direction", required=("query",)),
        summary="Instant query: streams for a log query, a vector for a metric query.",
    )
    async def query(request: Request) -> Response:
        p = parse_instant(await _params(request), ctx.clock())
        tenant = _tenant(request)
        result = await _timed(
            ctx,
            "query",
            lambda: ctx.engine.query_instant(
                p.query, time_ns=p.time_ns, tenant=tenant, direction=p.direction, limit=p.limit
            ),
        )
        return _json(to_loki_json(result, {}))

    @_get_post(
        app,
        "/loki/api/v1/query_range",
        openapi_extra=_doc(
            "query",
            "start",
            "end",
            "since",
            "step",
            "interval",
            "limit",
            "direction",
            required=("query",),
        ),
        summary="Range query: streams for a log query, a matrix for a metric query.",
    )
    async def query_range(request: Request) -> Response:
        p = parse_range(await _params(request), ctx.clock())
        tenant = _tenant(request)
        result = await _timed(
            ctx,
            "query_range",
            lambda: ctx.engine.query_range(
                p.query,
                start_ns=p.start_ns,
                end_ns=p.end_ns,
                step_ns=p.step_ns,
                tenant=tenant,
                direction=p.direction,
                limit=p.limit,
            ),
        )
        return _json(to_loki_json(result, {}))

    @_get_post(
        app,
        "/loki/api/v1/format_query",
        openapi_extra=_doc("query", required=("query",)),
        summary="The query in canonical spelling (Grafana's format button).",
    )
    async def format_query_route(request: Request) -> Response:
        text = (await _params(request)).get("query")
        if text is None:
            raise ParameterError("query", "missing; give a LogQL query")
        return _json({"status": "success", "data": format_query(parse(text))})


def _metadata_routes(app: FastAPI, ctx: _Context) -> None:
    store = ctx.store

    @_get_post(
        app,
        "/loki/api/v1/labels",
        openapi_extra=_doc("start", "end", "since", "query"),
        summary="Label names of the streams with data in the range.",
    )
    async def labels(request: Request) -> Response:
        params = await _params(request)
        start, end = parse_bounds(params, ctx.clock())
        tenant = _tenant(request)
        query = params.get("query")
        found = _selectors_of([query]) if query is not None else []

        def names() -> list[str]:
            if query is None:
                return store.label_names(tenant, start, end)
            out: set[str] = set()
            for selector in found:
                for stream in store.streams(tenant, selector, start, end):
                    out.update(stream)
            return sorted(out)

        return _json({"status": "success", "data": await run_in_threadpool(names)})

    @_get_post(
        app,
        "/loki/api/v1/label/{name}/values",
        openapi_extra=_doc("start", "end", "since", "query"),
        summary="Values of one label among the (matching) streams with data in the range.",
    )
    async def label_values(name: str, request: Request) -> Response:
        params = await _params(request)
        start, end = parse_bounds(params, ctx.clock())
        tenant = _tenant(request)
        query = params.get("query")
        found = _selectors_of([query]) if query is not None else [()]

        def values() -> list[str]:
            out: set[str] = set()
            for selector in found:
                out.update(store.label_values(tenant, name, start, end, selector))
            return sorted(out)

        return _json({"status": "success", "data": await run_in_threadpool(values)})

    @_get_post(
        app,
        "/loki/api/v1/series",
        openapi_extra=_doc("match[]", "start", "end", "since"),
        summary="Label sets of the streams matching any match[] selector.",
    )
    async def series(request: Request) -> Response:
        params = await _params(request)
        start, end = parse_bounds(params, ctx.clock())
        tenant = _tenant(request)
        texts = params.get_all("match[]") + params.get_all("match")
        found = _selectors_of(texts) if texts else [()]
        data = await run_in_threadpool(store.series, tenant, found, start, end)
        return _json({"status": "success", "data": data})

    @_get_post(
        app,
        "/loki/api/v1/index/stats",
        openapi_extra=_doc("query", "start", "end", "since", required=("query",)),
        summary="How many streams, chunks (segments), entries and bytes a selector covers.",
    )
    async def index_stats(request: Request) -> Response:
        params = await _params(request)
        start, end = parse_bounds(params, ctx.clock())
        tenant = _tenant(request)
        query = params.get("query")
        if query is None:
            raise ParameterError("query", 'missing; give a stream selector such as {app="x"}')
        found = _selectors_of([query])

        def totals() -> dict[str, int]:
            out = {"streams": 0, "chunks": 0, "entries": 0, "bytes": 0}
            for selector in found:
                stats = store.stats(tenant, selector, start, end)
                for key in out:
                    out[key] += getattr(stats, key)
            return out

        return _json(await run_in_threadpool(totals))


def _push_route(app: FastAPI, ctx: _Context) -> None:
    @app.post(
        "/loki/api/v1/push",
        status_code=204,
        response_class=Response,
        openapi_extra={**_doc(), **_PUSH_DOC},
        summary="Store log lines: Loki's JSON or protobuf+snappy push body.",
    )
    async def push(request: Request) -> Response:
        tenant = _tenant(request)
        body = await _read_body(request, ctx.max_push_bytes)
        streams = decode_push(
            body,
            request.headers.get("content-type"),
            request.headers.get("content-encoding"),
            ctx.max_push_bytes,
        )
        total = sum(len(s.lines) for s in streams)
        if total == 0:
            return Response(status_code=204)
        batch = to_batch(streams)
        if ctx.push is not None:
            return await _push_via_pipeline(ctx, ctx.push, tenant, batch)
        report = await run_in_threadpool(ctx.store.ingest_batch, tenant, batch)
        ctx.metrics.pushed_lines.labels(tenant).inc(total)
        ctx.metrics.pushed_bytes.labels(tenant).inc(sum(len(x) for s in streams for x in s.lines))
        return _push_answer(ctx, tenant, total, report.rejected)


def _push_answer(ctx: _Context, tenant: str, total: int, rejected: dict[str, int]) -> Response:
    """204, or 400 naming the lines that were not stored (the others were)."""
    if not rejected:
        return Response(status_code=204)
    for reason, count in rejected.items():
        ctx.metrics.rejected_lines.labels(tenant, reason).inc(count)
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(rejected.items()))
    return PlainTextResponse(
        f"{sum(rejected.values())} of {total} lines were not stored ({reasons}); the others were",
        status_code=400,
    )


def _retry_later(message: str, status: int, retry_after_s: int) -> Response:
    return PlainTextResponse(
        message, status_code=status, headers={"Retry-After": str(retry_after_s)}
    )


async def _push_via_pipeline(
    ctx: _Context, target: PushTarget, tenant: str, batch: pa.Table
) -> Response:
    """Hand the push to the daemon's pipeline and answer once it is written (see
    :mod:`logpipe.server.pushqueue`). Lines the store would refuse (timestamps outside
    1970..2116) are refused here, so the answer can name them as a direct write does."""
    total = batch.num_rows
    ts = batch.column("ts")
    in_range = pc.and_(pc.greater_equal(ts, 0), pc.less_equal(ts, MAX_TS_NS))
    kept = batch.filter(in_range)
    rejected = {"timestamp_out_of_range": total - kept.num_rows} if kept.num_rows < total else {}
    if kept.num_rows:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[str | None] = loop.create_future()

        def settle(error: str | None) -> None:
            if not outcome.done():
                outcome.set_result(error)

        def done(error: str | None) -> None:  # called on the pipeline's writer thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                loop.call_soon_threadsafe(settle, error)

        try:
            ticket = target.submit(tenant, kept, done)
        except PushBusyError as exc:
            healthy = ctx.health is None or ctx.health.snapshot().ready
            return _retry_later(str(exc), 429 if healthy else 503, exc.retry_after_s)
        except PushUnavailableError as exc:
            return _retry_later(str(exc), 503, exc.retry_after_s)
        try:
            error = await asyncio.wait_for(asyncio.shield(outcome), ctx.push_timeout_s)
        except TimeoutError:
            if target.cancel(ticket):
                message = f"not stored within {ctx.push_timeout_s:g} s (is the store full?)"
                return _retry_later(message + "; send it again", 503, 5)
            error = await outcome  # already being written: its outcome is the answer
        if error is not None:
            return _retry_later(error, 503, 5)
    ctx.metrics.pushed_lines.labels(tenant).inc(kept.num_rows)
    line_bytes = pc.sum(pc.binary_length(kept.column("line"))).as_py() or 0
    ctx.metrics.pushed_bytes.labels(tenant).inc(line_bytes)
    return _push_answer(ctx, tenant, total, rejected)


def _ask_route(app: FastAPI, ctx: _Context) -> None:
    @app.post(
        "/api/v1/ask",
        response_class=Response,
        openapi_extra={**_doc(), **ASK_DOC},
        summary="A question in plain English: validated LogQL, its explanation and result.",
    )
    async def ask(request: Request) -> Response:
        tenant = _tenant(request)
        body = await _read_body(request, MAX_ASK_BODY_BYTES)
        asked, details = parse_ask_body(body, tenant, ctx.clock())
        asker = ctx.asker
        assert asker is not None  # create_app always sets one
        result = await _timed(ctx, "ask", lambda: asker.ask(asked))
        return _json(result.to_json(details=details))


def _service_routes(app: FastAPI, ctx: _Context) -> None:
    @app.get("/ready", response_class=PlainTextResponse, summary="200 once the store is readable.")
    async def ready() -> Response:
        if ctx.health is not None:
            snap = ctx.health.snapshot()
            if not snap.ready:
                return PlainTextResponse("not ready: " + "; ".join(snap.reasons), status_code=503)
        try:
            await run_in_threadpool(ctx.store.tenants)
        except (OSError, StoreError) as exc:
            return PlainTextResponse(f"store not readable: {exc}", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/live", response_class=PlainTextResponse, summary="200 while the daemon runs.")
    async def live() -> Response:
        snap = ctx.health.snapshot() if ctx.health is not None else None
        if snap is not None and not snap.live:
            return PlainTextResponse("not live: " + "; ".join(snap.reasons), status_code=503)
        return PlainTextResponse("live")

    @app.get("/metrics", response_class=Response, summary="Prometheus metrics.")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/loki/api/v1/status/buildinfo",
        response_class=Response,
        summary="Loki's build information (Grafana reads the version).",
    )
    async def buildinfo() -> Response:
        return _json(
            {
                "version": LOKI_API_VERSION,
                "revision": f"logpipe-{__version__}",
                "branch": "logpipe",
                "buildUser": "logpipe",
                "buildDate": "",
                "goVersion": "",
                "logpipe": __version__,
            }
        )
