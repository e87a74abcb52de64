"""The audit log's recorder: every mutating request under /v1 (POST, PUT, PATCH, DELETE),
refused ones included, becomes a row: who (the token's subject, or "anonymous"), their
business unit, the action (`task.submit`, ...), its target (task id or region name), the
outcome (HTTP status) and the time. Never the body: it may carry secrets.

It fails closed. The row is written before the request is carried out; when it cannot
be, the request is answered 503 and not carried out, so nothing happens unrecorded. The
outcome is written once the response is sent; if that write fails the row stays with
no outcome (the request did run), and the failure is logged as an error.

The caller is identified here, from the bearer token, independently of the routes' own
`authenticate` (a refused or unrouted request is recorded too); an invalid token is
"anonymous": its claims are not to be believed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import verify_once
from meridian.auth.tokens import AuthError, Principal, TokenVerifier
from meridian.store import Store

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDIT_DOWN = "the audit log cannot be written; the request was not carried out, retry"
# A task id is looked for in bodies up to this size (the API refuses larger ones anyway).
MAX_CAPTURE_BYTES = 2 << 20

# (method, route path) -> action. A mutating route missing here is recorded all the
# same, as "<METHOD> <path template>".
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/v1/tasks"): "task.submit",
    ("POST", "/v1/tasks/{task_id}/start"): "task.start",
    ("POST", "/v1/tasks/{task_id}/stop"): "task.stop",
    ("PATCH", "/v1/tasks/{task_id}"): "task.modify",
    ("PUT", "/v1/regions/{name}/scaling/mode"): "region.scaling_mode",
    ("POST", "/v1/placement:dry-run"): "placement.dry_run",
}
# Actions whose task id is in the body (or, generated, in the response), not the path.
ID_IN_BODY = frozenset({"task.submit", "placement.dry_run"})
TARGET_PARAMS = (("task_id", "task"), ("name", "region"))


@dataclass(frozen=True)
class Target:
    action: str
    kind: str | None
    name: str | None


def audited(scope: Scope) -> bool:
    if scope["type"] != "http":  # lifespan and websocket scopes have no method
        return False
    path: str = scope["path"]
    return scope["method"] in MUTATING and (path == "/v1" or path.startswith("/v1/"))


def describe(method: str, template: str, params: dict[str, Any]) -> Target:
    action = ACTIONS.get((method, template), f"{method} {template}")
    for param, kind in TARGET_PARAMS:
        value = params.get(param)
        if isinstance(value, str):
            return Target(action, kind, value)
    return Target(action, "task" if action in ID_IN_BODY else None, None)


def target_of(scope: Scope) -> Target:
    """Before routing: the known action whose route the path matches, else "unknown"
    with the path as its target (corrected from the route, once routed: `routed`)."""
    method, path = scope["method"], scope["path"]
    for (action_method, template), (pattern, convertors) in _PATTERNS.items():
        match = pattern.match(path)
        if match and action_method == method:
            params = {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
            return describe(method, template, params)
    return Target("unknown", "path", path)


def routed(scope: Scope, before: Target) -> Target:
    """After routing, the route FastAPI chose: also names mutating routes added later."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return before
    return describe(scope["method"], template, scope.get("path_params") or {})


_PATTERNS = {
    key: (pattern, convertors)
    for key in ACTIONS
    for pattern, _, convertors in [compile_path(key[1])]
}


async def caller(verifier: TokenVerifier | None, scope: Scope) -> Principal | None:
    header = Headers(scope=scope).get("authorization", "")
    scheme, _, token = header.partition(" ")
    if verifier is None or scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        # The verdict stays in the scope: the route's `authenticate` reuses it.
        if verifier.uses_jwks:  # may fetch the provider's keys: off the event loop
            return await asyncio.to_thread(verify_once, verifier, scope, token.strip())
        return verify_once(verifier, scope, token.strip())
    except AuthError:
        return None


def body_task_id(chunks: list[bytes]) -> str | None:
    try:
        value = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    task_id = value.get("id") if isinstance(value, dict) else None
    return task_id if isinstance(task_id, str) else None


class AuditLog:
    """ASGI middleware around the routes (api.main adds it inside the body limit)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not audited(scope):
            await self.app(scope, receive, send)
            return
        api: FastAPI = scope["app"]
        state = getattr(api.state, "meridian", None)
        if state is None:
            # Not started (an app served without its lifespan, as some tests do): the
            # routes have no store either, so nothing can happen that needs recording.
            await self.app(scope, receive, send)
            return
        store: Store = state.store
        target = target_of(scope)
        principal = await caller(getattr(api.state, "verifier", None), scope)
        try:
            entry = await asyncio.to_thread(
                store.record_audit,
                subject=principal.subject if principal else None,
                business_unit=principal.business_unit if principal else None,
                action=target.action,
                method=scope["method"],
                target_kind=target.kind,
                target=target.name,
            )
        except Exception:
            log.exception("audit log write failed: refusing %s %s", scope["method"], scope["path"])
            await JSONResponse({"detail": AUDIT_DOWN}, status_code=503)(scope, receive, send)
            return
        await self._run(scope, receive, send, store, entry, target)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, store: Store, entry: int, target: Target
    ) -> None:
        wants_id = target.name is None and target.action in ID_IN_BODY
        request: list[bytes] = []
        response: list[bytes] = []
        status = 500  # what the client gets if the app raises

        async def receiving() -> Message:
            message = await receive()
            if wants_id and message["type"] == "http.request":
                _capture(request, message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif wants_id and message["type"] == "http.response.body":
                _capture(response, message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            final = routed(scope, target)
            if wants_id and final.name is None:
                # A created task's id is the response's (it may be generated); else the
                # body's (a refused submission).
                created = body_task_id(response) if status < 300 else None
                final = replace(final, name=created or body_task_id(request))
            try:
                await asyncio.to_thread(
                    store.finish_audit,
                    entry,
                    outcome=status,
                    action=final.action,
                    target_kind=final.kind,
                    target=final.name,
                )
            except Exception:
                log.exception(
                    "audit log: could not record outcome %s of entry %s (%s %s)",
                    status,
                    entry,
                    scope["method"],
                    scope["path"],
                )


def _capture(into: list[bytes], chunk: bytes) -> None:
    if sum(map(len, into)) + len(chunk) <= MAX_CAPTURE_BYTES:
        into.append(chunk)


def install_audit(app: FastAPI) -> None:
    app.add_middleware(AuditLog)
