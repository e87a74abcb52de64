"""Request and response bodies of the REST API (v1). Handlers never return ORM objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from meridian.regions.models import RegionHealth
from meridian.store.records import TaskEventRecord, TaskRecord
from meridian.tasks.spec import TaskKind, TaskSpec, TaskStatus, validate_task_id


class TaskCreate(TaskSpec):
    """A task body: the spec, plus an optional client-chosen id and whether to start."""

    id: str | None = None
    start: bool = True
    # Optional here: omitted, it is the caller's (from the token).
    business_unit: Annotated[str | None, Field(min_length=1, max_length=63)] = None  # type: ignore[assignment]

    @field_validator("business_unit")
    @classmethod
    def _bu_is_label_value(cls, value: str | None) -> str | None:  # type: ignore[override]
        return None if value is None else TaskSpec._bu_is_label_value(value)

    @field_validator("id")
    @classmethod
    def _id_is_label(cls, value: str | None) -> str | None:
        return validate_task_id(value) if value is not None else None

    def spec(self, *, business_unit: str | None = None) -> TaskSpec:
        fields = self.model_dump(exclude={"id", "start"})
        if business_unit is not None:
            fields["business_unit"] = business_unit
        return TaskSpec.model_validate(fields)


class PlacementPublic(BaseModel):
    region: str | None = None
    reason: str | None = None
    score: float | None = None
    breakdown: dict[str, float] | None = None


class TaskPublic(BaseModel):
    """`id` is the task's id within its business unit (what paths take); `workflow_id`
    is unique across units: the Temporal workflow id (`temporal workflow describe -w`)
    and the value of its Jobs' `meridian.io/task-id` label."""

    id: str
    workflow_id: str
    name: str
    business_unit: str
    kind: TaskKind
    status: TaskStatus
    region: str | None
    job_name: str | None
    attempt: int
    placement: PlacementPublic | None
    error: str | None
    exit_code: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    spec: TaskSpec

    @classmethod
    def of(cls, task: TaskRecord) -> TaskPublic:
        placement = None
        if task.placement_summary:
            placement = PlacementPublic.model_validate(
                {
                    k: task.placement_summary.get(k)
                    for k in ("region", "reason", "score", "breakdown")
                }
            )
        return cls(
            id=task.public_id,
            workflow_id=task.id,
            name=task.name,
            business_unit=task.business_unit,
            kind=task.kind,
            status=task.status,
            region=task.region,
            job_name=task.job_name,
            attempt=task.attempt,
            placement=placement,
            error=task.error,
            exit_code=task.exit_code,
            created_at=task.created_at,
            updated_at=task.updated_at,
            finished_at=task.finished_at,
            spec=task.spec,
        )


class TaskList(BaseModel):
    items: list[TaskPublic]
    next_cursor: str | None


class TaskEventPublic(BaseModel):
    """One transition. `time` and `at` are the same instant (both names are served)."""

    at: datetime
    time: datetime
    status: TaskStatus
    attempt: int
    region: str | None
    job_name: str | None
    reason: str
    error: str | None = None
    exit_code: int | None = None

    @classmethod
    def of(cls, event: TaskEventRecord) -> TaskEventPublic:
        return cls(
            at=event.at,
            time=event.at,
            status=event.status,
            attempt=event.attempt,
            region=event.region,
            job_name=event.job_name,
            reason=event.reason,
            error=event.error,
            exit_code=event.exit_code,
        )


class TaskEventList(BaseModel):
    task_id: str
    workflow_id: str
    items: list[TaskEventPublic]


class PlacementDecisionPublic(BaseModel):
    attempt: int
    decided_at: datetime
    decision: dict[str, Any]


class PlacementTable(BaseModel):
    task_id: str
    workflow_id: str
    chosen: str | None
    reason: str | None
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    filtered: list[dict[str, Any]] = Field(default_factory=list)
    history: list[PlacementDecisionPublic] = Field(default_factory=list)


class DryRunResult(BaseModel):
    chosen: str | None
    reason: str
    candidates: list[dict[str, Any]]
    filtered: list[dict[str, Any]]


class NetworkPathPublic(BaseModel):
    target: str
    rtt_ms: float
    loss: float
    samples: int
    measured_at: datetime


class ServerlessUsagePublic(BaseModel):
    """A region's serverless capacity: what it declares and, once a probe saw its virtual
    node, what runs there. CPU and memory are the billed sizes; `cost` is billed size ×
    run time so far of the pods the probe listed there, in `currency`."""

    kind: str
    currency: str
    quota_pods: int
    quota_cpu: str
    quota_memory: str
    seen: bool
    ready: bool | None = None
    pods: int | None = None
    cpu: str | None = None
    memory: str | None = None
    # Burst pods the cloud found no room for (quota exhausted).
    waiting_pods: int | None = None
    cost: float | None = None


class RegionPublic(BaseModel):
    name: str
    provider: str
    location: str
    role: str
    state: RegionHealth
    reason: str | None
    since: datetime | None
    water_level: float | None
    nodes_ready: int | None
    nodes_total: int | None
    cpu_free_millis: int | None
    memory_free_bytes: int | None
    pending_pods: int | None
    api_error_rate: float | None
    # Smoothed time the region's API took to answer a health probe.
    api_latency_ms: float | None = None
    worker_polling: bool | None
    pollers: int | None
    task_queue: str
    network: list[NetworkPathPublic] = Field(default_factory=list)
    # Null when the region declares no serverless capacity.
    serverless: ServerlessUsagePublic | None = None


class RegionList(BaseModel):
    items: list[RegionPublic]


class SweepRunPublic(BaseModel):
    id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    # Counts by what was found (running-tasks also `resume_failed`: tasks with no
    # workflow whose workflow could not be started, each noted in its task's events)...
    found: dict[str, Any]
    # ...and by what was done about it (running-tasks also `workflows_started`).
    fixed: dict[str, Any]
    k8s_requests: int
    # Statements the central side sent for the run (reading tasks, marking orphans).
    db_queries: int
    error: str | None


class SweepRunList(BaseModel):
    items: list[SweepRunPublic]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    # The token's subject, or "anonymous" when the request carried no valid token.
    subject: str
    # The caller's business unit (from the token), not necessarily the target's.
    business_unit: str | None
    action: str
    method: str
    target_kind: str | None
    target: str | None
    # The HTTP status; null while the request runs or when its end could not be written.
    outcome: int | None


class AuditList(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: str | None
