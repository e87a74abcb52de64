"""Wiring of the resource-scheduling loop: per-region settings, the demand of tasks
waiting for a region, the "near its ceiling" verdict placement reads, and the idempotent
start of one RegionControlWorkflow per region."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.config import RegionsFile
from meridian.scaling import Mode, PolicyTuning, RegionObservation, Request
from meridian.scaling.contracts import (
    REGION_CONTROL_WORKFLOW,
    RegionControlInput,
    region_control_id,
)
from meridian.scaling.water import schedulable
from meridian.settings import ScalingSettings, Settings
from meridian.tasks.spec import TaskStatus

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from meridian.store import Store

# Placement filter codes that mean "this region would do if it had room".
CAPACITY_CODES = frozenset({"capacity", "saturated", "no_nodes"})
# Bounds the database work of one tick; demand beyond it still shows as pending pods.
WAITING_TASKS_LIMIT = 200


class ScalingConfig:
    """Scaling settings with per-region overrides: a region in the regions file may
    carry `scaling: {high_water: 0.7, ...}` (any `ScalingSettings` field)."""

    def __init__(
        self,
        settings: ScalingSettings,
        regions: RegionsFile,
        tuning: PolicyTuning | None = None,
    ):
        self.settings = settings
        self.regions = regions
        self.tuning = tuning or PolicyTuning.model_validate({})

    def for_region(self, region: str) -> ScalingSettings:
        try:
            extra = self.regions.get(region).model_extra or {}
        except KeyError:
            return self.settings
        overrides: dict[str, Any] = dict(extra.get("scaling") or {})
        if not overrides:
            return self.settings
        return ScalingSettings.model_validate({**self.settings.model_dump(), **overrides})


def controlled_regions(regions: RegionsFile) -> list[str]:
    """Regions with node pools: the only ones with anything to scale."""
    return [r.name for r in regions.regions if r.node_pools]


def waiting_demand(store: Store, region: str) -> list[Request]:
    """Meridian tasks still waiting to be placed whose last placement turned `region`
    down for lack of room: capacity the region would need to take them."""
    return _waiting_by_region(store).get(region, [])


# One scan of the waiting tasks serves every region's tick for a few seconds: scanning
# per region repeated the same queries once per region, and during a submission burst
# (hundreds of tasks SCHEDULING for a moment) that was a tenth of the central worker.
_WAITING_TTL_SECONDS = 5.0
_waiting_cache: dict[int, tuple[float, dict[str, list[Request]]]] = {}
_waiting_lock = threading.Lock()


def _waiting_by_region(store: Store) -> dict[str, list[Request]]:
    now = time.monotonic()
    with _waiting_lock:
        cached = _waiting_cache.get(id(store))
        if cached is not None and now - cached[0] < _WAITING_TTL_SECONDS:
            return cached[1]
    result: dict[str, list[Request]] = {}
    refs = [
        r
        for r in store.list_active_tasks(limit=1000)
        if r.status is TaskStatus.SCHEDULING and r.job_name is None
    ]
    for ref in refs[:WAITING_TASKS_LIMIT]:
        decision = store.latest_placement(ref.id)
        if not decision or decision.get("chosen"):
            continue  # placed, or not decided yet: no unmet demand to report
        short = [
            str(f.get("region"))
            for f in decision.get("filtered") or []
            if f.get("code") in CAPACITY_CODES
        ]
        if not short:
            continue
        task = store.get_task(ref.id)
        if task is None:
            continue
        resources = task.spec.job.resources
        try:
            request = Request(
                id=f"task/{ref.id}",
                cpu=parse_cpu_millis(resources.cpu),
                mem=parse_memory_bytes(resources.memory),
            )
        except ValueError:
            continue
        for region in short:
            result.setdefault(region, []).append(request)
    with _waiting_lock:
        _waiting_cache[id(store)] = (now, result)
    return result


def near_ceiling(
    mode: Mode, water: float, observation: RegionObservation, settings: ScalingSettings
) -> tuple[bool, str | None]:
    """Whether placement should leave the region alone: above the high mark with no pool
    able to grow, or no node left to take pods. Only in `auto`: in `advise` and `off`
    the loop changes nothing, placement included."""
    if mode != "auto":
        return False, None
    if observation.nodes and not any(schedulable(n) for n in observation.nodes):
        return True, "every node is cordoned or unhealthy"
    growable = [p for p in observation.pools if not p.autoscaler_enabled and p.desired < p.max]
    if water >= settings.high_water and not growable:
        return True, (
            f"water level {water:.2f} at or above {settings.high_water:.2f} and every pool "
            "is at its max"
        )
    return False, None


async def ensure_region_control(
    client: Client, settings: Settings, regions: RegionsFile
) -> list[WorkflowHandle[Any, Any]]:
    """Start one RegionControlWorkflow per region unless it runs: a second central
    replica, or a restart, changes nothing."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    config = ScalingConfig(settings.scaling, regions)

    async def start(region: str) -> WorkflowHandle[Any, Any]:
        tick = config.for_region(region).tick_seconds
        return await client.start_workflow(
            REGION_CONTROL_WORKFLOW,
            RegionControlInput(
                region=region,
                tick_seconds=tick,
                observe_timeout_seconds=max(5.0, min(30.0, tick * 2)),
            ),
            id=region_control_id(region),
            task_queue=settings.central_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            run_timeout=timedelta(days=3650),
        )

    return list(await asyncio.gather(*(start(r) for r in controlled_regions(regions))))
