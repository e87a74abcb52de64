"""/v1/placement:dry-run — where a task would go, and why, creating nothing."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from api.auth import UNAUTHORIZED, PrincipalDep, authenticate
from api.deps import TOO_LARGE, UNREADABLE, StateDep, invalid_body
from api.schemas import DryRunResult, TaskCreate
from api.tenancy import owned_spec
from meridian.placement.scoring import place
from meridian.placement.types import PlacementRequest
from meridian.tasks.service import SpecInvalid, check_spec

router = APIRouter(
    prefix="/v1", tags=["placement"], dependencies=[Depends(authenticate)], responses=UNAUTHORIZED
)


@router.post(
    "/placement:dry-run",
    response_model=DryRunResult,
    responses={422: {"description": "invalid field"}, **TOO_LARGE, **UNREADABLE},
)
async def dry_run(body: TaskCreate, state: StateDep, principal: PrincipalDep) -> DryRunResult:
    """The checks of a submit (the same 422s), then placement; works without Temporal."""
    spec = owned_spec(body, principal)
    try:
        check_spec(spec, state.catalog, state.regions, policy=state.settings.policy)
    except SpecInvalid as exc:
        raise invalid_body(exc) from exc
    snapshots = await asyncio.to_thread(state.view.snapshots)
    decision = place(
        # for_task: the capacity resolved as a real placement resolves it.
        PlacementRequest.for_task(body.id or "dry-run", spec),
        snapshots,
        state.settings.placement,
        state.catalog,
        burst=state.settings.burst,
    )
    dumped = decision.model_dump(mode="json")
    return DryRunResult(
        chosen=decision.chosen,
        reason=decision.reason,
        candidates=dumped.get("candidates") or [],
        filtered=dumped.get("filtered") or [],
    )
