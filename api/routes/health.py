from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from api.deps import StateDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "not ready: `checks` says what is not"}},
)
async def readyz(state: StateDep, response: Response) -> Health:
    """Ready when the database answers and Temporal is connected."""
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(state.store.count_tasks_by_status)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    if state.client is None:
        checks["temporal"] = "not connected"
    else:
        try:
            await asyncio.wait_for(state.client.service_client.check_health(), timeout=3)
            checks["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["temporal"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "unavailable", checks=checks)
