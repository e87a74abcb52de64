"""What the store takes and returns: frozen pydantic models, never ORM objects.

They are safe to hand across threads, to return from FastAPI handlers and to pass
through Temporal with `pydantic_data_converter`. Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from meridian.regions.details import RegionDetails
from meridian.regions.models import RECORDED_HEALTH
from meridian.regions.models import RegionHealth as RegionHealth
from meridian.scaling.models import ScalingMode as ScalingMode
from meridian.tasks.spec import TaskKind, TaskSpec, TaskStatus

SweepKind = Literal["running-tasks", "jobs"]

# The states a region's row may hold (`unknown` is the absence of a row).
REGION_HEALTH_VALUES: frozenset[str] = frozenset(h.value for h in RECORDED_HEALTH)
SCALING_MODE_VALUES: frozenset[str] = frozenset(m.value for m in ScalingMode)
SWEEP_KIND_VALUES: frozenset[str] = frozenset({"running-tasks", "jobs"})
DEFAULT_SCALING_MODE = ScalingMode.AUTO


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class TaskRecord(_Record):
    """`id` is the task key (meridian/tasks/keys.py: the workflow id, unique across
    units); `public_id` is the id its business unit knows it by."""

    id: str
    public_id: str
    name: str
    business_unit: str
    kind: TaskKind
    status: TaskStatus
    spec: TaskSpec
    spec_hash: str
    idempotency_key: str | None
    region: str | None
    job_name: str | None
    attempt: int
    placement_summary: dict[str, Any] | None
    error: str | None
    exit_code: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    version: int
    last_seq: int


class CreateOutcome(_Record):
    task: TaskRecord
    created: bool


class TaskPage(_Record):
    items: list[TaskRecord]
    next_cursor: str | None


class Transition(_Record):
    """One status change of a task, as the TaskWorkflow decided it.

    `event_key` is unique per task and chosen by the workflow (e.g.
    f"{attempt}:{seq}:{status}"), so a retried activity records the event once.
    `seq` increases monotonically per task (>= 0); a transition whose seq is not above
    the last applied one is stored as history but does not move the task's state.

    `region`, `job_name` and `placement_summary` belong to an attempt: None keeps the
    task's current value within the same attempt and clears it when `attempt` changes.
    `error` and `exit_code` describe this transition and are always written as given.
    """

    task_id: str = Field(min_length=1, max_length=63)
    event_key: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0)
    status: TaskStatus
    attempt: int = Field(ge=0)
    at: AwareDatetime
    region: str | None = None
    job_name: str | None = None
    reason: str = ""
    error: str | None = None
    exit_code: int | None = None
    placement_summary: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


class TaskEventRecord(_Record):
    id: int
    task_id: str
    event_key: str
    seq: int
    status: TaskStatus
    attempt: int
    region: str | None
    job_name: str | None
    reason: str
    at: datetime
    error: str | None
    exit_code: int | None
    placement_summary: dict[str, Any] | None
    details: dict[str, Any] | None
    applied: bool


class ActiveTaskRef(_Record):
    id: str
    status: TaskStatus
    region: str | None
    attempt: int
    job_name: str | None


class PlacementRecord(_Record):
    task_id: str
    attempt: int
    seq: int
    decision: dict[str, Any]
    decided_at: datetime


class RegionStateRecord(_Record):
    name: str
    state: RegionHealth
    reason: str
    since: datetime
    updated_at: datetime
    details: RegionDetails = Field(default_factory=RegionDetails)


class RegionEventRecord(_Record):
    id: int
    name: str
    state: RegionHealth
    previous_state: RegionHealth | None
    reason: str
    at: datetime
    details: dict[str, Any] | None


class NetworkPathRecord(_Record):
    from_region: str
    target: str
    rtt_ms: float
    loss: float
    samples: int
    measured_at: datetime


class SweepRunRecord(_Record):
    id: str
    kind: SweepKind
    started_at: datetime
    finished_at: datetime | None
    found: dict[str, Any]
    fixed: dict[str, Any]
    k8s_requests: int
    db_queries: int
    error: str | None


class OrphanRecord(_Record):
    region: str
    job_name: str
    task_id: str | None
    attempt: int | None
    reason: str
    recorded_at: datetime
    deleted_at: datetime | None
    namespace: str | None = None  # None: not known


class ScalingDecisionRecord(_Record):
    id: str
    region: str
    at: datetime
    kind: str
    target: str
    reason: str
    numbers: dict[str, Any]
    applied: bool


class WaterLevelRecord(_Record):
    region: str
    at: datetime
    level: float
    cpu_requested: int
    cpu_allocatable: int
    mem_requested: int
    mem_allocatable: int
