"""/v1/regions: health, water level, free resources, worker pollers, network quality."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from api.auth import UNAUTHORIZED, authenticate
from api.deps import StateDep
from api.schemas import NetworkPathPublic, RegionList, RegionPublic, ServerlessUsagePublic
from meridian.queues import region_task_queue
from meridian.regions.config import RegionConfig
from meridian.regions.load import RegionLoad, serverless_cost
from meridian.regions.models import RegionHealth
from meridian.serverless.sizing import format_cpu, format_memory
from meridian.store import NetworkPathRecord, RegionStateRecord
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
    return RegionList(
        items=[
            _public(region, states.get(region.name), count, paths)
            for region, count in zip(state.regions.regions, pollers, strict=True)
        ]
    )


def _serverless(region: RegionConfig, load: RegionLoad | None) -> ServerlessUsagePublic | None:
    config = region.serverless
    if config is None:
        return None
    usage = load.serverless if load is not None else None
    declared = ServerlessUsagePublic(
        kind=config.kind.value,
        currency=config.currency,
        quota_pods=config.max_pods,
        quota_cpu=format_cpu(config.max_cpu_millis),
        quota_memory=format_memory(config.max_memory_bytes),
        seen=usage is not None,
    )
    if usage is None:
        return declared
    return declared.model_copy(
        update={
            "ready": usage.ready,
            "pods": usage.pods,
            "cpu": format_cpu(usage.cpu_millis),
            "memory": format_memory(usage.memory_bytes),
            "waiting_pods": usage.waiting_pods,
            "cost": round(serverless_cost(usage, config), 6),
        }
    )


def _public(
    region: RegionConfig,
    record: RegionStateRecord | None,
    pollers: int | None,
    paths: list[NetworkPathRecord],
) -> RegionPublic:
    """One region as clients see it: the load fields are null until a probe answered,
    the health fields until the monitor assessed the region at all."""
    details = record.details if record is not None else None
    load = details.load if details is not None else None
    return RegionPublic(
        name=region.name,
        provider=region.provider.value,
        location=region.location,
        role=region.role,
        state=record.state if record is not None else RegionHealth.UNKNOWN,
        reason=record.reason if record is not None else "no health report yet",
        since=record.since if record is not None else None,
        water_level=round(load.water_level, 4) if load is not None else None,
        nodes_ready=load.nodes_ready if load is not None else None,
        nodes_total=load.nodes_total if load is not None else None,
        cpu_free_millis=load.cpu_free_millis if load is not None else None,
        memory_free_bytes=load.memory_free_bytes if load is not None else None,
        pending_pods=load.pending_pods if load is not None else None,
        api_error_rate=details.api_error_rate if details is not None else None,
        api_latency_ms=details.api_latency_ms if details is not None else None,
        worker_polling=details.worker_polling if details is not None else None,
        pollers=pollers,
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
        serverless=_serverless(region, load),
    )
