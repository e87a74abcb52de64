"""Wiring of the resource-scheduling loop: per-region settings, the demand of tasks
waiting for a region, the "near its ceiling" verdict placement reads, and the idempotent
start of one RegionControlWorkflow per region. No module state: the demand cache is an
object its worker owns."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.config import RegionsFile
from meridian.scaling import PolicyTuning, RegionObservation, Request, ScalingMode
from meridian.scaling.contracts import (
    REGION_CONTROL_WORKFLOW,
    RegionControlInput,
    region_control_id,
)
from meridian.scaling.water import schedulable
from meridian.settings import BurstSettings, ScalingSettings, Settings
from meridian.tasks.spec import Capacity, TaskStatus, capacity_for

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
        burst: BurstSettings | None = None,
    ):
        self.settings = settings
        self.regions = regions
        self.tuning = tuning or PolicyTuning.model_validate({})
        # When an `auto` task is worth bursting rather than waiting for a node: the
        # loop weighs growing against bursting with the same threshold as placement.
        self.burst = burst or BurstSettings()

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


class WaitingDemand:
    """Meridian tasks still waiting to be placed whose last placement turned a region
    down for lack of room: capacity that region would need to take them.

    One per central worker (it builds it and hands it to the scaling activities). One
    scan of the waiting tasks serves every region's tick for `ttl_seconds`: scanning per
    region repeated the same queries once per region, and during a submission burst
    (hundreds of tasks SCHEDULING for a moment) that was a tenth of the central worker.
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl_seconds: float = 5.0,
        limit: int = WAITING_TASKS_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._scanned: tuple[float, dict[str, list[Request]]] | None = None

    def for_region(self, region: str) -> list[Request]:
        return self._by_region().get(region, [])

    def _by_region(self) -> dict[str, list[Request]]:
        now = self._clock()
        with self._lock:
            if self._scanned is not None and now - self._scanned[0] < self.ttl_seconds:
                return self._scanned[1]
        result = self._scan()
        with self._lock:
            self._scanned = (now, result)
        return result

    def _scan(self) -> dict[str, list[Request]]:
        store = self.store
        result: dict[str, list[Request]] = {}
        refs = [
            r
            for r in store.list_active_tasks(limit=1000)
            if r.status is TaskStatus.SCHEDULING and r.job_name is None
        ]
        for ref in refs[: self.limit]:
            decision = store.latest_placement(ref.id)
            if not decision or decision.get("chosen"):
                continue  # placed, or not decided yet: no unmet demand to report
            short = [
                str(f.get("region"))
                for f in decision.get("filtered") or []
                if f.get("code") in CAPACITY_CODES
            ]
            request = self._request(ref.id) if short else None
            if request is None:
                continue
            for region in short:
                result.setdefault(region, []).append(request)
        return result

    def _request(self, task_id: str) -> Request | None:
        task = self.store.get_task(task_id)
        if task is None:
            return None
        resources = task.spec.job.resources
        try:
            return Request(
                id=f"task/{task_id}",
                cpu=parse_cpu_millis(resources.cpu),
                mem=parse_memory_bytes(resources.memory),
                burstable=capacity_for(task.spec) is Capacity.AUTO,
            )
        except ValueError:
            return None


def near_ceiling(
    mode: ScalingMode, water: float, observation: RegionObservation, settings: ScalingSettings
) -> tuple[bool, str | None]:
    """Whether placement should leave the region alone: above the high mark with no pool
    able to grow, or no node left to take pods. Only in `auto`: in `advise` and `off`
    the loop changes nothing, placement included."""
    if mode != ScalingMode.AUTO:
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

    config = ScalingConfig(settings.scaling, regions, burst=settings.burst)

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
            task_queue=settings.resolved_control_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            run_timeout=timedelta(days=3650),
        )

    return list(await asyncio.gather(*(start(r) for r in controlled_regions(regions))))
