"""Request metrics: every answer counted and timed by route template, method and status.

The route is the template FastAPI matched (`/v1/tasks/{task_id}`), never the raw path,
so a million task ids make one series; a path no route matches is `unmatched`.

The API's `/metrics` is served on a port of its own (`MERIDIAN_METRICS__API_PORT`), not on
the API's app: the API's port faces users (every /v1 route takes a token, and an open
/metrics beside them would be the one unauthenticated page), while the metrics port
binds where Prometheus scrapes, as each worker's does.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meridian.observability import metrics as m

UNMATCHED = "unmatched"


class RequestMetrics:
    """Pure ASGI, outermost: it sees the answer the client gets, a 413 or 401 included,
    and a handler that raised as the 500 the server turns it into."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _template(scope)
            method = str(scope.get("method", "")).upper()
            m.API_REQUESTS.labels(route, method, str(status)).inc()
            m.API_REQUEST_DURATION.labels(route, method).observe(time.monotonic() - started)


def _template(scope: Scope) -> str:
    # The router records the route it matched in the (shared) scope.
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else UNMATCHED
