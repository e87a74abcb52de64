"""Over a business unit's quota: 429 with Retry-After, from any route that submits or
starts a task (the check itself is in the store's transaction; see meridian/store/quotas.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from meridian.tenancy.quotas import QuotaExceeded

TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "over a business unit quota; Retry-After says when to try again",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}


async def quota_exceeded(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, QuotaExceeded):  # registered for this type only
        raise exc
    return JSONResponse(
        {"detail": str(exc), "quota": exc.quota},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def install_quota_errors(app: FastAPI) -> None:
    app.add_exception_handler(QuotaExceeded, quota_exceeded)
