"""/v1/sweeps: what the compensating sweeps found and fixed on their last runs."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import UNAUTHORIZED, authenticate
from api.deps import StateDep
from api.schemas import SweepRunList, SweepRunPublic

router = APIRouter(
    prefix="/v1/sweeps",
    tags=["sweeps"],
    dependencies=[Depends(authenticate)],
    responses=UNAUTHORIZED,
)


@router.get("", response_model=SweepRunList)
async def list_sweeps(
    state: StateDep,
    kind: Annotated[str | None, Query(pattern="^(running-tasks|jobs)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> SweepRunList:
    runs = await asyncio.to_thread(state.store.list_sweep_runs, kind=kind, limit=limit)
    return SweepRunList(
        items=[
            SweepRunPublic(
                id=str(r.id),
                kind=r.kind,
                started_at=r.started_at,
                finished_at=r.finished_at,
                found=r.found,
                fixed=r.fixed,
                k8s_requests=r.k8s_requests,
                db_queries=r.db_queries,
                error=r.error,
            )
            for r in runs
        ]
    )
