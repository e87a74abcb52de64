"""/v1/regions: health, water level, free resources, worker pollers, network quality."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from api.auth import UNAUTHORIZED, authenticate
from api.deps import StateDep
from api.schemas import NetworkPathPublic, RegionList, RegionPublic
from meridian.queues import region_task_queue
from meridian.regions.load import water_level
from meridian.temporal import recent_pollers

router = APIRouter(
    prefix="/v1/regions",
    tags=["regions"],
    dependencies=[Depends(authenticate)],
    responses=UNAUTHORIZED,
)


async def _pollers(state: StateDep, region: str) -> int | None:
    """How many workers poll the region's queue, as Temporal's task-queue description says."""
    if state.client is None:
        return None
    return await recent_pollers(state.client, region_task_queue(region), timeout=3.0)


@router.get("", response_model=RegionList)
async def list_regions(state: StateDep) -> RegionList:
    states = await asyncio.to_thread(state.store.get_region_states)
    paths = await asyncio.to_thread(state.store.list_network_paths)
    pollers = await asyncio.gather(*(_pollers(state, r.name) for r in state.regions.regions))
    items = []
    for region, poller_count in zip(state.regions.regions, pollers, strict=True):
        record = states.get(region.name)
        details = dict(record.details or {}) if record is not None else {}
        load = dict(details.get("load") or {})
        items.append(
            RegionPublic(
                name=region.name,
                provider=region.provider.value,
                location=region.location,
                role=region.role,
                state=record.state if record is not None else "unknown",
                reason=record.reason if record is not None else "no health report yet",
                since=record.since if record is not None else None,
                water_level=round(water_level(load), 4) if load else None,
                nodes_ready=load.get("nodes_ready"),
                nodes_total=load.get("nodes_total"),
                cpu_free_millis=(load["cpu_allocatable_millis"] - load["cpu_requested_millis"])
                if load
                else None,
                memory_free_bytes=(
                    load["memory_allocatable_bytes"] - load["memory_requested_bytes"]
                )
                if load
                else None,
                pending_pods=load.get("pending_pods"),
                api_error_rate=details.get("api_error_rate"),
                api_latency_ms=details.get("api_latency_ms"),
                worker_polling=details.get("worker_polling"),
                pollers=poller_count,
                task_queue=region_task_queue(region.name),
                network=[
                    NetworkPathPublic(
                        target=p.target,
                        rtt_ms=round(p.rtt_ms, 3),
                        loss=round(p.loss, 4),
                        samples=p.samples,
                        measured_at=p.measured_at,
                    )
                    for p in paths
                    if p.from_region == region.name
                ],
            )
        )
    return RegionList(items=items)
