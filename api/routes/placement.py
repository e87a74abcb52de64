"""/v1/placement:dry-run — where a task would go, and why, creating nothing."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.deps import StateDep
from api.routes.tasks import check_spec
from api.schemas import DryRunResult, TaskCreate
from meridian.placement.scoring import place
from meridian.placement.types import PlacementRequest

router = APIRouter(prefix="/v1", tags=["placement"])


@router.post("/placement:dry-run", response_model=DryRunResult)
async def dry_run(body: TaskCreate, state: StateDep) -> DryRunResult:
    spec = body.spec()
    check_spec(spec, state)
    snapshots = await asyncio.to_thread(state.view.snapshots)
    decision = place(
        PlacementRequest(
            task_id=body.id or "dry-run",
            data_source=spec.data_source,
            resources=spec.job.resources,
            constraints=spec.placement,
            excluded_regions=[],
        ),
        snapshots,
        state.settings.placement,
        state.catalog,
    )
    dumped = decision.model_dump(mode="json")
    return DryRunResult(
        chosen=decision.chosen,
        reason=decision.reason,
        candidates=dumped.get("candidates") or [],
        filtered=dumped.get("filtered") or [],
    )
