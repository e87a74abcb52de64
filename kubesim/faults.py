"""Fault injection for one region's API server, and its request counters."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubesim import errors
from kubesim.store import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "kubesim injected an internal error",
    503: "kubesim injected: the server is currently unable to handle the request",
}


@dataclass(slots=True)
class FaultState:
    outage: bool = False
    error_rate: float = 0.0
    error_codes: list[int] = field(default_factory=lambda: [500, 503, 429])
    retry_after: int = 1
    latency_ms: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def describe(self) -> dict[str, Any]:
        return {
            "outage": self.outage,
            "api_errors": {
                "rate": self.error_rate,
                "codes": list(self.error_codes),
                "retry_after": self.retry_after,
            }
            if self.error_rate > 0
            else None,
            "latency_ms": self.latency_ms,
        }

    def injected_error(self) -> errors.ApiError | None:
        if self.error_rate <= 0 or self.rng.random() >= self.error_rate:
            return None
        code = self.rng.choice(self.error_codes or [500])
        message = _MESSAGES.get(code, f"kubesim injected HTTP {code}")
        if code == 429:
            return errors.too_many_requests(message, self.retry_after)
        if code == 500:
            error = errors.internal_error(message)
        elif code == 503:
            error = errors.service_unavailable(message)
        else:
            error = errors.ApiError(errors.status_failure(code, "InternalError", message))
        # Retry-After accompanies 5xx too, as an overloaded or restarting apiserver sends it.
        error.headers["Retry-After"] = str(self.retry_after)
        return error


@dataclass(slots=True)
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    injected_errors: int = 0
    total: int = 0

    def record(self, verb: str, resource: str) -> None:
        self.requests[f"{verb} {resource}"] += 1


def error_response(error: errors.ApiError) -> web.Response:
    return web.Response(
        status=error.code,
        body=dumps(error.status),
        content_type="application/json",
        headers=error.headers,
    )


def fault_middleware(faults: FaultState, stats: Stats) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        stats.total += 1
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        injected = faults.injected_error()
        if injected is not None:
            stats.injected_errors += 1
            return error_response(injected)
        return await handler(request)

    return middleware
