"""Same-name stand-ins for TaskWorkflow's activities, backed by a tiny in-memory world.

Only for the workflow-logic unit tests on the time-skipping server; the integration
tests run the real activities against kubesim and a real database.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from meridian.kube.contracts import (
    NAMESPACE_NOT_READY,
    CreateJobInput,
    CreateJobResult,
    DeleteJobResult,
    EnsureNamespaceInput,
    EnsureNamespaceResult,
    JobObservation,
    JobPhase,
    JobRef,
)
from meridian.regions.contracts import RegionHealthInput, RegionHealthResult
from meridian.tasks.contracts import (
    TASK_WORKFLOW,
    PlaceTaskInput,
    PlaceTaskResult,
    RecordOrphanInput,
    RecordStatusInput,
    RecordStatusResult,
    TaskProgress,
    TaskWorkflowInput,
    TaskWorkflowResult,
    UpdateSpecInput,
    UpdateSpecResult,
)
from meridian.tasks.spec import DataSource, JobSpec, RetryPolicy, TaskSpec, job_name_for
from meridian.tasks.timing import WorkflowTiming
from workflows.task import TaskWorkflow


@dataclass
class FakeWorld:
    regions: list[str] = field(default_factory=lambda: ["aws-us-east-1", "azure-eastus"])
    jobs: dict[tuple[str, str], JobPhase] = field(default_factory=dict)  # (region, name)
    created: list[tuple[str, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # each created Job's image
    deleted: list[tuple[str, str]] = field(default_factory=list)
    orphans: list[tuple[str, str]] = field(default_factory=list)
    # Every read and delete the workflow sent, and each fenced orphan (namespaces).
    refs: list[JobRef] = field(default_factory=list)
    orphan_records: list[RecordOrphanInput] = field(default_factory=list)
    records: list[RecordStatusInput] = field(default_factory=list)
    placements: list[PlaceTaskInput] = field(default_factory=list)
    specs: list[TaskSpec] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)
    # Regions whose creates land but answer too late (a backed-up unit worker): the Job
    # exists, the call fails. Deletes there work.
    late: set[str] = field(default_factory=set)
    # Regions where only a Job's first create lands late: sent again, it answers.
    late_once: set[str] = field(default_factory=set)
    create_calls: int = 0  # creates that reached the fake unit worker
    # The most Jobs of one task alive at once, seen at each create.
    most_live: int = 0
    down: set[str] = field(default_factory=set)
    read_phase: dict[str, JobPhase] = field(default_factory=dict)  # job name -> phase on read
    no_capacity: bool = False  # placement finds no region at all
    forbidden: set[str] = field(default_factory=set)  # regions whose admission refuses Jobs
    # Regions whose unit worker cannot set up a namespace (its RBAC forbids it). Elsewhere
    # ensure_namespace answers, as a unit worker does from its cache without a request.
    namespace_refused: set[str] = field(default_factory=set)
    ensured: list[tuple[str, str]] = field(default_factory=list)  # (region, business unit)
    # Activity name -> gate: the activity waits until the gate opens (see `hold`).
    gates: dict[str, threading.Event] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)  # activities waiting at a closed gate

    def hold(self, activity_name: str) -> threading.Event:
        """Make `activity_name` wait until the returned gate is set.

        A held local activity holds its workflow task open: whatever reaches the workflow
        meanwhile (signals, updates) is delivered together in the next activation."""
        gate = threading.Event()
        self.gates[activity_name] = gate
        return gate

    def _pass(self, activity_name: str) -> None:
        gate = self.gates.get(activity_name)
        if gate is None or gate.is_set():
            return
        self.waiting.add(activity_name)
        try:
            if not gate.wait(timeout=30):
                raise RuntimeError(f"{activity_name} held for 30 s: the test never opened it")
        finally:
            self.waiting.discard(activity_name)

    def statuses(self) -> list[str]:
        return [r.status.value for r in self.records]

    def activities(self) -> list[Any]:
        world = self

        @activity.defn(name="place_task")
        def place_task(inp: PlaceTaskInput) -> PlaceTaskResult:
            world._pass("place_task")
            world.placements.append(inp)
            if world.no_capacity:
                return PlaceTaskResult(region=None, reason="no capacity anywhere", summary={})
            for region in world.regions:
                if region not in inp.excluded_regions:
                    return PlaceTaskResult(
                        region=region, reason=f"{region} is best", summary={"region": region}
                    )
            return PlaceTaskResult(region=None, reason="no healthy region", summary={})

        @activity.defn(name="record_status")
        def record_status(inp: RecordStatusInput) -> RecordStatusResult:
            world._pass("record_status")
            # As activities/tasks.py does: a fenced Job rides along with its transition.
            if inp.orphan is not None:
                world.orphans.append((inp.orphan.region, inp.orphan.job_name))
                world.orphan_records.append(inp.orphan)
            world.records.append(inp)
            return RecordStatusResult(recorded=True)

        @activity.defn(name="update_spec")
        def update_spec(inp: UpdateSpecInput) -> UpdateSpecResult:
            world._pass("update_spec")
            world.specs.append(inp.spec)
            return UpdateSpecResult(updated=True)

        @activity.defn(name="record_orphan")
        def record_orphan(inp: RecordOrphanInput) -> bool:
            world.orphans.append((inp.region, inp.job_name))
            world.orphan_records.append(inp)
            return True

        @activity.defn(name="region_health")
        def region_health(inp: RegionHealthInput) -> RegionHealthResult:
            return RegionHealthResult(
                region=inp.region,
                down=inp.region in world.down,
                state="down" if inp.region in world.down else "up",
            )

        @activity.defn(name="ensure_namespace")
        def ensure_namespace(inp: EnsureNamespaceInput) -> EnsureNamespaceResult:
            world._pass("ensure_namespace")
            if inp.region in world.namespace_refused:
                raise ApplicationError(
                    "403 namespaces is forbidden", type="KubeForbidden", non_retryable=True
                )
            world.ensured.append((inp.region, inp.business_unit))
            return EnsureNamespaceResult(namespace=f"meridian-{inp.business_unit}")

        @activity.defn(name="create_job")
        def create_job(inp: CreateJobInput) -> CreateJobResult:
            unit = inp.spec.business_unit
            if inp.only_if_namespace_ready and (inp.region, unit) not in world.ensured:
                # As the unit worker answers, at once and without a request, when it
                # has not prepared the namespace.
                raise ApplicationError(
                    "namespace not prepared", type=NAMESPACE_NOT_READY, non_retryable=True
                )
            world._pass("create_job")
            world.create_calls += 1
            if inp.region in world.unreachable:
                raise ApplicationError("connection refused", type="KubeUnavailable")
            if inp.region in world.forbidden:
                # What the unit worker makes of an admission webhook's 403.
                raise ApplicationError(
                    "403 admission webhook denied the request: image not signed",
                    type="KubeForbidden",
                    non_retryable=True,
                )
            name = job_name_for(inp.task_id, inp.attempt)
            existed = (inp.region, name) in world.jobs
            world.jobs[(inp.region, name)] = JobPhase.PENDING
            prefix = job_name_for(inp.task_id, 0)[:-1]
            live = sum(1 for _, n in world.jobs if n.startswith(prefix))
            world.most_live = max(world.most_live, live)
            if inp.region in world.late_once and not existed:
                # The call's whole budget ran out (its own retries too): the workflow
                # gets the failure, not the activity's next attempt.
                raise ApplicationError(
                    "timed out waiting for the API", type="KubeUnavailable", non_retryable=True
                )
            if inp.region in world.late:
                raise ApplicationError("timed out waiting for the API", type="KubeUnavailable")
            world.created.append((inp.region, name))
            world.images.append(inp.spec.job.image)
            # As the unit worker does: the unit's namespace unless the input names one.
            namespace = inp.namespace or f"meridian-{inp.spec.business_unit}"
            return CreateJobResult(job_name=name, created=not existed, namespace=namespace)

        @activity.defn(name="read_job")
        def read_job(ref: JobRef) -> JobObservation:
            world.refs.append(ref)
            if ref.region in world.unreachable:
                raise ApplicationError("connection refused", type="KubeUnavailable")
            phase = world.read_phase.get(ref.job_name) or world.jobs.get(
                (ref.region, ref.job_name), JobPhase.MISSING
            )
            return JobObservation(
                task_id=ref.task_id,
                attempt=ref.attempt,
                region=ref.region,
                job_name=ref.job_name,
                phase=phase,
                source="backstop",
            )

        @activity.defn(name="delete_job")
        def delete_job(ref: JobRef) -> DeleteJobResult:
            world.refs.append(ref)
            if ref.region in world.unreachable:
                raise ApplicationError("connection refused", type="KubeUnavailable")
            existed = world.jobs.pop((ref.region, ref.job_name), None) is not None
            world.deleted.append((ref.region, ref.job_name))
            return DeleteJobResult(deleted=existed)

        return [
            place_task,
            record_status,
            update_spec,
            record_orphan,
            region_health,
            ensure_namespace,
            create_job,
            read_job,
            delete_job,
        ]


def spec(**overrides: Any) -> TaskSpec:
    base: dict[str, Any] = {
        "name": "nightly-etl",
        "business_unit": "ads",
        "data_source": DataSource(provider="aws", region="us-east-1"),
        "job": JobSpec(image="busybox"),
        "retry": RetryPolicy(max_attempts=2, backoff_seconds=1),
    }
    base.update(overrides)
    return TaskSpec(**base)


def worker_for(client: Client, world: FakeWorld, queue: str) -> Worker:
    """One worker serving the central queue and every region's queue's activities.

    Region queues are real task queues on the test server, so a worker per region."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[TaskWorkflow],
        activities=world.activities(),
        activity_executor=_executor(),
    )


def region_workers(client: Client, world: FakeWorld) -> list[Worker]:
    return [
        Worker(
            client,
            task_queue=f"region.{r}",
            activities=world.activities(),
            activity_executor=_executor(),
        )
        for r in world.regions
    ]


_EXECUTOR: Any = None


def _executor() -> Any:
    global _EXECUTOR
    if _EXECUTOR is None:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR = ThreadPoolExecutor(max_workers=16)
    return _EXECUTOR


async def start(
    client: Client,
    queue: str,
    task_spec: TaskSpec,
    *,
    progress: TaskProgress | None = None,
    task_id: str | None = None,
    **timing: Any,
) -> Any:
    task_id = task_id or f"t-{uuid.uuid4().hex[:10]}"
    return await client.start_workflow(
        TASK_WORKFLOW,
        TaskWorkflowInput(
            task_id=task_id,
            spec=task_spec,
            progress=progress,
            timing=WorkflowTiming(**{"backstop_seconds": 30.0, **timing}),
        ),
        id=task_id,
        task_queue=queue,
        execution_timeout=timedelta(hours=1),
        result_type=TaskWorkflowResult,
    )


def obs(handle_id: str, attempt: int, region: str, phase: JobPhase, **extra: Any) -> JobObservation:
    return JobObservation(
        task_id=handle_id,
        attempt=attempt,
        region=region,
        job_name=job_name_for(handle_id, attempt),
        phase=phase,
        **extra,
    )
