"""Sweep cost at fleet scale: N active tasks across the 15-region fleet, one sweep of each kind.

Seeding skips the workflows (10,000 of them would take minutes and are not what a
sweep reads): the task rows go in through `Store` (create, then a RUNNING transition
for attempt 1 in the task's region) and their Jobs through the engine's own
`JobGateway.create_job` (so `build_job`'s labels and names), each with a one-hour
simulated duration so that all of them are running while the sweeps look.

Each sweep is then run twice, as the engine runs it:
* by the engine itself: the sweep workflow started on the central task queue (what
  the Temporal Schedule's action does), executed by the central worker and the unit
  workers — the wall time and kubesim's request counters are read around it;
* by an in-process replica of the central worker (the engine's sweep workflow and
  `SweepActivities` classes, hosted on a bench task queue, the region activities still
  on the unit workers), so that the database statements can be counted exactly with
  `Store.query_count`, which only counts inside its own process.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.sweeps import SweepActivities
from bench.system import System
from kubesim.control import KubesimControl
from meridian.kube.clients import ClusterClients
from meridian.kube.gateway import JobGateway
from meridian.settings import Settings
from meridian.store import Store, Transition
from meridian.sweeps.contracts import (
    JOB_SWEEP_WORKFLOW,
    RUNNING_SWEEP_WORKFLOW,
    SweepInput,
    SweepResult,
)
from meridian.tasks.spec import TaskSpec, TaskStatus, job_name_for
from meridian.temporal import connect
from workflows.sweeps import JobSweepWorkflow, RunningTaskSweepWorkflow

NAMESPACE = "meridian"
PODS_PER_NODE = 110  # kubesim's node pod capacity, as a kubelet's default
BENCH_SWEEP_QUEUE = "bench.sweeps"


def seeded_spec(region: str) -> TaskSpec:
    provider, _, location = region.partition("-")
    return TaskSpec.model_validate(
        {
            "name": "sweep-bench",
            "business_unit": "bench",
            "kind": "batch",
            "data_source": {"provider": provider, "region": location},
            "job": {
                "image": "busybox",
                "command": ["true"],
                "resources": {"cpu": "10m", "memory": "16Mi"},
                "annotations": {"kubesim.io/duration": "1h"},
            },
            "placement": {"region": region},
        }
    )


def grow_pools(control: KubesimControl, regions: list[str], per_region: int) -> None:
    """Enough nodes that every seeded pod is scheduled (kubesim caps pods per node)."""
    for region in regions:
        pools = control.pools(region)
        have = sum(int(p["desired"]) for p in pools)
        need = math.ceil(per_region / PODS_PER_NODE) + 1
        if need > have:
            desired = int(pools[0]["desired"]) + need - have
            control.scale_pool(region, pools[0]["name"], desired, provisioning_delay_seconds=0)


def seed(system: System, regions: list[str], n: int, threads: int = 8) -> dict[str, Any]:
    """n RUNNING task rows and their running Jobs, spread evenly over the regions."""
    run = uuid.uuid4().hex[:6]
    tasks = [(f"sw-{run}-{i:05d}", regions[i % len(regions)]) for i in range(n)]
    control = KubesimControl(system.control_url)
    grow_pools(control, regions, math.ceil(n / len(regions)))
    store = Store(system.database_url, pool_size=threads, max_overflow=0)
    clients = ClusterClients(system.kubeconfig)
    gateway = JobGateway(clients)
    specs = {r: seeded_spec(r) for r in regions}
    for region in regions:
        gateway.ensure_namespace(region, NAMESPACE)

    def row(item: tuple[str, str]) -> None:
        task_id, region = item
        store.create_task(task_id, specs[region], status=TaskStatus.SCHEDULING)
        store.record_transition(
            Transition(
                task_id=task_id,
                event_key=f"1:0:{TaskStatus.RUNNING}",
                seq=0,
                status=TaskStatus.RUNNING,
                attempt=1,
                at=datetime.now(UTC),
                region=region,
                job_name=job_name_for(task_id, 1),
                reason="seeded by the sweep bench",
            )
        )

    def job(item: tuple[str, str]) -> None:
        task_id, region = item
        gateway.create_job(region, NAMESPACE, task_id, specs[region], 1)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(row, tasks))
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(job, tasks))
    jobs_s = time.perf_counter() - started
    pods = wait_pods(control, regions, n)
    control.close()
    store.close()
    clients.close()
    return {
        "tasks": n,
        "regions": len(regions),
        "rows_s": round(rows_s, 1),
        "jobs_s": round(jobs_s, 1),
        "pods": pods,
    }


def wait_pods(control: KubesimControl, regions: list[str], n: int, timeout: float = 120.0) -> int:
    """Until the Job controller has made every seeded Job's pod."""
    deadline = time.monotonic() + timeout
    pods = 0
    while time.monotonic() < deadline:
        pods = sum(int(control.region(r)["pods"]) for r in regions)
        if pods >= n:
            break
        time.sleep(1.0)
    return pods


def kube_requests(control: KubesimControl, regions: list[str]) -> dict[str, int]:
    """Per "verb resource" counters summed over the regions."""
    totals: dict[str, int] = {}
    for region in regions:
        for verb, resources in control.stats(region)["requests"].items():
            for resource, count in resources.items():
                key = f"{verb} {resource}"
                totals[key] = totals.get(key, 0) + int(count)
    return totals


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _summary(result: SweepResult) -> dict[str, Any]:
    found: dict[str, int] = {}
    for region in result.regions:
        for key, count in region.found.items():
            found[key] = found.get(key, 0) + count
    return {
        "jobs_seen": sum(r.jobs_seen for r in result.regions),
        "requests_reported": sum(r.requests for r in result.regions),
        "errors": [f"{r.region}: {r.error}" for r in result.regions if r.error],
        "found": found,
    }


async def _engine_sweep(
    client: Client,
    system: System,
    control: KubesimControl,
    workflow: str,
    queue: str,
    sweep_input: SweepInput,
) -> dict[str, Any]:
    before = kube_requests(control, sweep_input.regions)
    started = time.perf_counter()
    result = await client.execute_workflow(
        workflow,
        sweep_input,
        id=f"bench-{workflow}-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
        result_type=SweepResult,
    )
    seconds = time.perf_counter() - started
    delta = _delta(before, kube_requests(control, sweep_input.regions))
    job_requests = sum(v for k, v in delta.items() if k.endswith(" jobs") and "watch" not in k)
    return {
        "seconds": round(seconds, 3),
        "k8s_job_requests": job_requests,
        "k8s_requests_all_during": delta,
        **_summary(result),
    }


async def measure_sweeps(system: System, regions: list[str], page_size: int) -> dict[str, Any]:
    settings = Settings(
        temporal_address=system.temporal_address,
        database_url=system.database_url,
        state_dir=system.state_dir,
        regions_file=system.regions_file,
    )
    client = await connect(settings)
    control = KubesimControl(system.control_url)
    sweep_input = SweepInput(regions=regions, page_size=page_size)
    out: dict[str, Any] = {"page_size": page_size}
    for kind, workflow in (
        ("running_task_sweep", RUNNING_SWEEP_WORKFLOW),
        ("job_sweep", JOB_SWEEP_WORKFLOW),
    ):
        # On the control queue, where the engine's schedules start them.
        out[kind] = await _engine_sweep(
            client, system, control, workflow, settings.resolved_control_task_queue, sweep_input
        )
    store = Store(system.database_url)
    activities = SweepActivities(store, client, settings)
    with ThreadPoolExecutor(16) as executor:
        worker = Worker(
            client,
            task_queue=BENCH_SWEEP_QUEUE,
            workflows=[RunningTaskSweepWorkflow, JobSweepWorkflow],
            activities=[
                activities.active_tasks_for_region,
                activities.reconcile_jobs,
                activities.mark_orphans_deleted,
                activities.record_sweep,
                activities.resume_unstarted_tasks,
            ],
            activity_executor=executor,
        )
        async with worker:
            for kind, workflow in (
                ("running_task_sweep", RUNNING_SWEEP_WORKFLOW),
                ("job_sweep", JOB_SWEEP_WORKFLOW),
            ):
                queries = store.query_count
                replica = await _engine_sweep(
                    client, system, control, workflow, BENCH_SWEEP_QUEUE, sweep_input
                )
                out[kind]["db_queries"] = store.query_count - queries
                out[kind]["replica_seconds"] = replica["seconds"]
    store.close()
    control.close()
    return out


def expected_pages(n: int, regions: int, page_size: int) -> int:
    """List requests one sweep needs: every region's Jobs in pages (at least one each)."""
    per_region = math.ceil(n / regions)
    return regions * max(1, math.ceil(per_region / page_size))


def run_sweeps(system: System, regions: list[str], page_size: int) -> dict[str, Any]:
    return asyncio.run(measure_sweeps(system, regions, page_size))
