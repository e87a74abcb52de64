"""The central role: TaskWorkflow, the region monitor and the sweeps, with their
store and placement activities. Stateless: run as many replicas as you like."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.regions import RegionActivities
from activities.scaling import ScalingCentralActivities
from activities.sweeps import SweepActivities
from activities.tasks import TaskActivities
from meridian.observability import metrics
from meridian.observability import record as measure
from meridian.observability.server import serve_metrics
from meridian.placement.reservations import Reservations, max_age_for
from meridian.regions.catalog import catalog_for
from meridian.regions.config import RegionsFile, load_regions
from meridian.regions.contracts import (
    REGION_MONITOR_ID,
    REGION_MONITOR_WORKFLOW,
    RegionMonitorInput,
)
from meridian.regions.view import RegionView
from meridian.scaling.loop import ScalingConfig, WaitingDemand, ensure_region_control
from meridian.settings import Settings
from meridian.store import Store
from meridian.sweeps.schedules import ensure_sweep_schedules
from meridian.temporal import connect
from workflows.region_control import RegionControlWorkflow
from workflows.regions import RegionMonitorWorkflow
from workflows.sweeps import JobSweepWorkflow, RunningTaskSweepWorkflow
from workflows.task import TaskWorkflow

log = logging.getLogger(__name__)

# The sandbox still guards every workflow run against non-deterministic calls, but our
# own modules are imported once, not re-executed for each new workflow: re-importing
# workflows/ and the models for every task was a sixth of the central worker's CPU.
# They hold no mutable module state; the replay tests guard determinism.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows", "meridian", "pydantic", "pydantic_core"
    )
)


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """Sandboxed when `workers.central_sandbox` asks for it (the test suite does), plain
    otherwise: see WorkerSettings.central_sandbox for why."""
    return SANDBOX if settings.workers.central_sandbox else UnsandboxedWorkflowRunner()


def build_central_workers(
    client: Client,
    settings: Settings,
    store: Store,
    regions: RegionsFile,
    executor: ThreadPoolExecutor,
) -> list[Worker]:
    """The task worker and the control worker, sharing one set of activity objects.

    The control queue carries the region monitor, the sweeps and the region control
    loops: with slots of their own they are never queued behind task workflows (at 2,000
    live tasks on one loaded worker, a monitor round once waited 172 s for a slot, and a
    monitor that cannot run its rounds cannot tell a live region from a dead one). Both
    workers register every workflow: runs started on the task queue before the control
    queue existed (a monitor, a control loop) carry on there.
    """
    view = RegionView(
        store, regions, settings.placement, catalog_for(settings.catalog_files), settings.burst
    )
    reservations = Reservations(max_age_seconds=max_age_for(settings.failover))
    tasks = TaskActivities(store, view, reservations)
    region_acts = RegionActivities(store, view, settings.failover, client)
    sweeps = SweepActivities(store, client, settings)
    # Resource scheduling (RegionControlWorkflow): decide, move tasks, record failures.
    scaling_config = ScalingConfig(settings.scaling, regions, burst=settings.burst)
    scaling = ScalingCentralActivities(store, scaling_config, WaitingDemand(store), client)
    activities: list[Callable[..., Any]] = [
        tasks.record_status,
        tasks.update_spec,
        tasks.place_task,
        tasks.record_orphan,
        tasks.region_health,
        region_acts.assess_regions,
        region_acts.signal_region_tasks,
        region_acts.trigger_job_sweep,
        sweeps.active_tasks_for_region,
        sweeps.reconcile_jobs,
        sweeps.resume_unstarted_tasks,
        sweeps.mark_orphans_deleted,
        sweeps.record_sweep,
        scaling.decide_scaling,
        scaling.move_tasks,
        scaling.record_scaling_outcome,
    ]
    runner = workflow_runner(settings)
    workflows = [
        TaskWorkflow,
        RegionMonitorWorkflow,
        RunningTaskSweepWorkflow,
        JobSweepWorkflow,
        RegionControlWorkflow,
    ]
    sizes = settings.workers
    task_worker = Worker(
        client,
        task_queue=settings.central_task_queue,
        workflow_runner=runner,
        workflows=workflows,
        activities=activities,
        activity_executor=executor,
        # Sizes and their reasons: meridian/settings.py WorkerSettings.
        max_cached_workflows=sizes.central_cached_workflows,
        max_concurrent_workflow_tasks=sizes.central_workflow_tasks,
        max_concurrent_activities=sizes.central_activities,
    )
    control_worker = Worker(
        client,
        task_queue=settings.resolved_control_task_queue,
        workflow_runner=runner,
        workflows=workflows,
        activities=activities,
        activity_executor=executor,
        # One monitor, two sweeps and a control loop per region: a handful at a time,
        # and each keeps its history in the cache between its rounds.
        max_cached_workflows=max(64, 4 * len(regions.regions)),
        max_concurrent_workflow_tasks=8,
        max_concurrent_activities=16,
    )
    return [task_worker, control_worker]


async def ensure_region_monitor(
    client: Client, settings: Settings, regions: RegionsFile
) -> WorkflowHandle[object, object]:
    """Start the singleton monitor unless it runs; a second central replica changes nothing."""
    names = [r.name for r in regions.regions if r.role != "central" or r.node_pools]
    return await client.start_workflow(
        REGION_MONITOR_WORKFLOW,
        RegionMonitorInput(
            regions=names,
            interval_seconds=settings.failover.health_interval_seconds,
            probe_timeout_seconds=max(1.5, settings.failover.health_interval_seconds * 1.5),
            probe_api_timeout_seconds=settings.failover.probe_api_timeout_seconds,
        ),
        id=REGION_MONITOR_ID,
        task_queue=settings.resolved_control_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        run_timeout=timedelta(days=3650),
    )


async def run_central(settings: Settings, stop: asyncio.Event) -> None:
    regions = load_regions(settings.regions_file)
    store = Store.from_settings(settings)
    store.migrate()
    # Before connecting: the Temporal client takes the runtime that exports its metrics.
    endpoint = serve_metrics("central", settings)
    metrics.ACTIVE_TASKS.bind(lambda: measure.active_task_counts(store.count_active_by_unit()))
    client = await connect(settings)
    threads = settings.workers.central_activities
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="central-act") as executor:
        task_worker, control_worker = build_central_workers(
            client, settings, store, regions, executor
        )
        async with task_worker, control_worker:
            await ensure_region_monitor(client, settings, regions)
            await ensure_sweep_schedules(client, settings)
            await ensure_region_control(client, settings, regions)  # resource scheduling
            log.info(
                "central worker polling %s and %s",
                settings.central_task_queue,
                settings.resolved_control_task_queue,
            )
            await stop.wait()
    metrics.ACTIVE_TASKS.bind(None)
    if endpoint is not None:
        endpoint.close()
    store.close()
