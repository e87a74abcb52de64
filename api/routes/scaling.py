"""/v1/regions/{name}: one region with its water level, pools and scaling decisions, and
the switch between `auto`, `advise` and `off`."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import ADMIN_ONLY, UNAUTHORIZED, AdminDep, authenticate
from api.deps import TOO_LARGE, UNREADABLE, StateDep
from api.routes.regions import list_regions
from api.scaling_schemas import (
    PoolPublic,
    RegionDetail,
    RegionEventList,
    RegionEventPublic,
    ScalingDecisionList,
    ScalingDecisionPublic,
    ScalingModePublic,
    ScalingModeUpdate,
    WaterLevelPoint,
)
from meridian.regions.details import RegionDetails
from meridian.scaling import PoolObservation
from meridian.store import RegionEventRecord

REGION_NOT_FOUND = "region not found"

router = APIRouter(
    prefix="/v1/regions",
    tags=["regions", "scaling"],
    dependencies=[Depends(authenticate)],
    # Every route here names a region: one not in the regions file is 404.
    responses={**UNAUTHORIZED, 404: {"description": REGION_NOT_FOUND}},
)
# Health state changes shown with a region; all of them at /v1/regions/{name}/events.
RECENT_EVENTS = 20


def _known(state: StateDep, name: str) -> None:
    if name not in state.regions.names:
        raise HTTPException(status_code=404, detail=REGION_NOT_FOUND)


def _pools(state: StateDep, name: str, observed: list[PoolObservation]) -> list[PoolPublic]:
    """The pools as the control loop last saw them; before its first tick, the bounds
    from the regions file."""
    drivers = {p.name: p.driver for p in state.regions.get(name).node_pools}
    if observed:
        return [
            PoolPublic(
                **p.model_dump(include=set(PoolPublic.model_fields)), driver=drivers.get(p.name)
            )
            for p in observed
        ]
    return [
        PoolPublic(
            name=p.name, min=p.min, desired=p.count, max=p.max, current=0, ready=0, driver=p.driver
        )
        for p in state.regions.get(name).node_pools
    ]


@router.get("/{name}", response_model=RegionDetail)
async def get_region(
    name: str, state: StateDep, history: Annotated[int, Query(ge=1, le=1000)] = 60
) -> RegionDetail:
    _known(state, name)
    listed = await list_regions(state)
    entry = next(item for item in listed.items if item.name == name)
    records = await asyncio.to_thread(state.store.get_region_states)
    record = records.get(name)
    details = record.details if record is not None else RegionDetails()
    scaling = details.scaling
    mode = await asyncio.to_thread(state.store.get_scaling_mode, name)
    levels = await asyncio.to_thread(state.store.water_level_history, name, history)
    events = await asyncio.to_thread(state.store.list_region_events, name, RECENT_EVENTS)
    return RegionDetail(
        **entry.model_dump(),
        scaling_mode=mode,
        draining=details.draining,
        draining_reason=details.draining_reason,
        burst_advised=details.burst_advised,
        burst_reason=details.burst_reason,
        burst_since=details.burst_since,
        scaling_observed_at=scaling.at if scaling is not None else None,
        pools=_pools(state, name, scaling.pools if scaling is not None else []),
        pending_demand={
            "pending_pods": scaling.pending_pods if scaling is not None else 0,
            "waiting_tasks": scaling.waiting_tasks if scaling is not None else 0,
        },
        water_level_history=[
            WaterLevelPoint(
                at=w.at,
                level=w.level,
                cpu_requested_millis=w.cpu_requested,
                cpu_allocatable_millis=w.cpu_allocatable,
                memory_requested_bytes=w.mem_requested,
                memory_allocatable_bytes=w.mem_allocatable,
            )
            for w in levels
        ],
        events=[_event(e) for e in events],
    )


def _event(record: RegionEventRecord) -> RegionEventPublic:
    return RegionEventPublic(
        at=record.at,
        state=record.state,
        previous_state=record.previous_state,
        reason=record.reason,
    )


@router.get("/{name}/events", response_model=RegionEventList)
async def list_region_events(
    name: str, state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> RegionEventList:
    """The region's health state changes (up, degraded, down), newest first."""
    _known(state, name)
    events = await asyncio.to_thread(state.store.list_region_events, name, limit)
    return RegionEventList(items=[_event(e) for e in events])


@router.get("/{name}/scaling", response_model=ScalingDecisionList)
async def list_scaling_decisions(
    name: str, state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> ScalingDecisionList:
    _known(state, name)
    mode = await asyncio.to_thread(state.store.get_scaling_mode, name)
    records = await asyncio.to_thread(state.store.list_scaling_decisions, name, limit)
    return ScalingDecisionList(
        region=name,
        mode=mode,
        items=[
            ScalingDecisionPublic(
                id=r.id,
                at=r.at,
                kind=r.kind,
                target=r.target,
                reason=r.reason,
                applied=r.applied,
                numbers=r.numbers,
            )
            for r in records
        ],
    )


@router.put(
    "/{name}/scaling/mode",
    response_model=ScalingModePublic,
    responses={403: {"description": ADMIN_ONLY}, **TOO_LARGE, **UNREADABLE},
)
async def set_scaling_mode(
    name: str, body: ScalingModeUpdate, state: StateDep, admin: AdminDep
) -> ScalingModePublic:
    """Takes effect on the region's next control tick. Admin only: how a region scales
    concerns every business unit in it."""
    _known(state, name)
    changed = await asyncio.to_thread(state.store.set_scaling_mode, name, body.mode)
    return ScalingModePublic(region=name, mode=body.mode, changed=changed)
