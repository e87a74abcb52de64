"""The bare-Temporal ceiling on the same server: N tiny workflows, their own worker.

Started the way the API starts tasks (bounded concurrency of starts), timed from the
first start to the last completion. The minimal task's signal is sent by its "create"
activity once it returns, the way a unit worker's watch signals a Job's news.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import psutil
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.ceiling_workflows import BareWorkflow, CeilingInput, CeilingResult, MinimalTaskWorkflow
from bench.memory import cpu_delta, cpu_seconds

TASK_QUEUE = "bench.ceiling"


class CeilingActivities:
    def __init__(self, client: Client):
        self.client = client
        self._pending: set[asyncio.Task[None]] = set()

    @activity.defn(name="bench_noop")
    async def noop(self, inp: CeilingInput) -> None:
        return None

    @activity.defn(name="bench_place")
    async def place(self, inp: CeilingInput) -> None:
        return None

    @activity.defn(name="bench_create")
    async def create(self, inp: CeilingInput) -> None:
        async def signal() -> None:
            await self.client.get_workflow_handle(inp.workflow_id).signal("job_done", inp)

        task = asyncio.create_task(signal())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @activity.defn(name="bench_record")
    async def record(self, inp: CeilingInput) -> None:
        return None


@dataclass
class CeilingRun:
    workflow: str
    n: int
    elapsed_s: float
    completed: int
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.n / self.elapsed_s if self.elapsed_s else 0.0


# Result long-polls in flight at once: the server caps concurrent long-polls per
# namespace, and thousands of them at once meet ResourceExhausted and retry.
RESULT_WAITERS = 100


async def _run_many(client: Client, workflow: str, n: int, concurrency: int) -> CeilingRun:
    run = uuid.uuid4().hex[:6]
    starting = asyncio.Semaphore(concurrency)
    waiting = asyncio.Semaphore(RESULT_WAITERS)

    async def one(i: int) -> bool:
        wid = f"bench-{workflow.lower()}-{run}-{i}"
        async with starting:
            handle = await client.start_workflow(
                workflow,
                CeilingInput(workflow_id=wid),
                id=wid,
                task_queue=TASK_QUEUE,
                result_type=CeilingResult,
            )
        # Started in order, finished roughly in order: the oldest are waited on first.
        async with waiting:
            result = await handle.result()
        return bool(result.ok)

    start = time.perf_counter()
    oks = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    elapsed = time.perf_counter() - start
    return CeilingRun(workflow, n, elapsed, sum(1 for ok in oks if ok is True))


async def measure_ceiling(
    temporal_address: str,
    n: int,
    concurrency: int,
    processes: dict[str, psutil.Process] | None = None,
) -> list[CeilingRun]:
    """Bare, then minimal-task; each run's CPU seconds per process when given them."""
    client = await Client.connect(temporal_address)
    acts = CeilingActivities(client)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BareWorkflow, MinimalTaskWorkflow],
        activities=[acts.noop, acts.place, acts.create, acts.record],
    )
    async with worker:
        # A short warm-up so neither figure pays for the worker's first polls.
        await _run_many(client, "BenchBareWorkflow", 20, concurrency)
        runs = []
        for workflow in ("BenchBareWorkflow", "BenchMinimalTaskWorkflow"):
            before = cpu_seconds(processes or {})
            run = await _run_many(client, workflow, n, concurrency)
            run.cpu_s = cpu_delta(before, cpu_seconds(processes or {}))
            runs.append(run)
    return runs
