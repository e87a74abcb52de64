"""The REST API: assembles the routers; Temporal is connected in the background so the
API answers (and says it is not ready) while Temporal is still starting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.audit import install_audit
from api.auth import build_verifier
from api.deps import AppState
from api.metrics import RequestMetrics
from api.quotas import install_quota_errors
from api.routes import audit, codec, health, placement, regions, scaling, sweeps, tasks
from meridian.observability.server import serve_metrics
from meridian.observability.tracing import configure_tracing
from meridian.regions.catalog import catalog_for
from meridian.regions.config import load_regions
from meridian.regions.view import RegionView
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import TaskService
from meridian.temporal import connect

log = logging.getLogger(__name__)


class BodyLimit:
    """Answers 413 to a request whose body is over `max_bytes`, before any handler runs.

    A declared Content-Length over the limit is refused up front; otherwise the body is
    read here, counting the bytes that actually arrive (a chunked body declares no length,
    and a header is only a claim), and handed on whole. The API takes small JSON bodies
    only, so holding one of at most `max_bytes` costs nothing a handler would not spend.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        first = await self._read_body(receive)
        if first is None:
            await self._refuse(scope, receive, send)
            return
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()  # after the body: http.disconnect
            given = True
            return first

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> Message | None:
        """The whole body as one message, or None when it grows past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client left: the app sees that as it would have
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body is over the limit of {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses it; the bytes are counted regardless
    return None


# The methods a 405's Allow header may name; the API serves no other.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route takes at this request's path."""
    return [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with an Allow header listing every method the path takes (RFC 9110): the
    router names only those of the first route whose path matched (/v1/tasks/{id}
    said `GET`, not `GET, PATCH`)."""
    detail = exc.detail if isinstance(exc, HTTPException) else "Method Not Allowed"
    headers = {"Allow": ", ".join(allowed_methods(request.app.router.routes, request.scope))}
    return JSONResponse({"detail": detail}, status_code=405, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before connecting: the Temporal client takes the runtime that exports its metrics.
        metrics_endpoint = serve_metrics("api", settings)
        store = Store.from_settings(settings)
        store.migrate()
        regions_file = load_regions(settings.regions_file)
        catalog = catalog_for(settings.catalog_files)
        view = RegionView(store, regions_file, settings.placement, catalog, settings.burst)
        state = AppState(
            settings=settings, store=store, regions=regions_file, catalog=catalog, view=view
        )
        app.state.meridian = state

        async def connect_temporal() -> None:
            client = await connect(settings, attempts=600, delay=0.5)
            state.client = client
            state.service = TaskService(store, client, settings, catalog, regions_file)
            log.info("connected to Temporal at %s", client.service_client.config.target_host)

        connecting = asyncio.create_task(connect_temporal())
        try:
            yield
        finally:
            connecting.cancel()
            store.close()
            if metrics_endpoint is not None:
                metrics_endpoint.close()

    verifier = build_verifier(settings)  # fails closed: no key, no API
    app = FastAPI(
        title="Meridian",
        version="1",
        description="Multi-region, multi-cloud task scheduling engine.",
        lifespan=lifespan,
    )
    # Added first, so inside the body limit: an oversized body (413) is refused before
    # anything is read or done, and is not recorded.
    install_audit(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    install_quota_errors(app)
    app.add_exception_handler(405, method_not_allowed)
    app.state.verifier = verifier
    codec.install_codec(app, settings)
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(regions.router)
    app.include_router(scaling.router)  # /v1/regions/{name}, its scaling decisions and mode
    app.include_router(placement.router)
    app.include_router(sweeps.router)
    app.include_router(codec.router)  # Temporal's remote codec: /codec/encode, /codec/decode
    app.include_router(audit.router)
    # Added last, so outermost: it counts every answer, refusals included.
    app.add_middleware(RequestMetrics)
    _instrument(app)
    return app


def _instrument(app: FastAPI) -> None:
    """A server span per request, parent of the StartWorkflow span a submit makes, when
    tracing is on (`OTEL_*`); nothing at all when it is off. Probes are left out: they
    would be most of the spans and say nothing of a task."""
    if not configure_tracing("meridian-api"):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,livez,metrics")
