"""TaskWorkflow's contract: its name, signals, update, query and search attributes,
and the inputs and results of the activities it drives.

Names here are what the Web UI and the `temporal` CLI see: they never change once
released. One input, one result, each a pydantic model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from meridian.serverless.plan import BurstPlan
from meridian.tasks.spec import TaskPatch, TaskSpec, TaskStatus
from meridian.tasks.timing import WorkflowTiming

# Workflow types and ids
TASK_WORKFLOW = "TaskWorkflow"

# Signals and updates of TaskWorkflow (usable from `temporal workflow signal`)
SIGNAL_JOB_STATUS = "job_status"
SIGNAL_STOP = "stop"
SIGNAL_INFRA_FAILURE = "infra_failure"
SIGNAL_RESIDENT_STATUS = "resident_status"
UPDATE_MODIFY = "modify"
QUERY_STATE = "state"

# Search attributes registered on the Temporal server (`meridian up` does it)
SA_STATUS = "MeridianStatus"
SA_REGION = "MeridianRegion"
SA_BUSINESS_UNIT = "MeridianBusinessUnit"
SA_KIND = "MeridianKind"
SEARCH_ATTRIBUTES = (SA_STATUS, SA_REGION, SA_BUSINESS_UNIT, SA_KIND)


class InfraFailure(BaseModel):
    """Sent by the region monitor (region down) or a resident channel (pod failing/gone)."""

    region: str
    reason: str
    attempt: int | None = None  # None: whatever attempt runs in `region`
    # The whole region is down: its Job cannot be deleted now; it is fenced off as an
    # orphan and the job sweep deletes it when the region returns.
    region_down: bool = False
    # A node-level move (scale-down, sick node being drained): the region stays eligible;
    # the node is cordoned, so the new attempt lands elsewhere in it or in another region.
    exclude_region: bool = True


class ResidentStatus(BaseModel):
    attempt: int
    state: str  # healthy | degraded | failing | suspect
    detail: str | None = None


class StopRequest(BaseModel):
    reason: str = "stopped by user"


class TaskProgress(BaseModel):
    """The workflow's running state; carried across continue-as-new."""

    status: TaskStatus = TaskStatus.SCHEDULING
    attempt: int = 0
    seq: int = 0
    region: str | None = None
    job_name: str | None = None
    app_failures: int = 0
    excluded_regions: dict[str, str] = Field(default_factory=dict)
    last_resource_version: int = 0
    resident_state: str | None = None
    # The namespace of the attempt's Job. Progress from before namespaces existed has
    # none: those Jobs are in the services' namespace, "meridian", until they end.
    namespace: str = "meridian"
    # Backstop periods the attempt has waited out: a run that continued as new while
    # following the Job resumes the grown period instead of starting again from the first.
    backstops_waited: int = 0


class TaskWorkflowInput(BaseModel):
    task_id: str
    spec: TaskSpec
    progress: TaskProgress | None = None
    timing: WorkflowTiming | None = None


class TaskWorkflowResult(BaseModel):
    task_id: str
    status: TaskStatus
    attempt: int
    region: str | None = None
    error: str | None = None
    exit_code: int | None = None


class ModifyInput(BaseModel):
    patch: TaskPatch


class ModifyResult(BaseModel):
    spec: TaskSpec
    job_replaced: bool


class RecordStatusInput(BaseModel):
    task_id: str
    seq: int
    status: TaskStatus
    attempt: int
    region: str | None = None
    job_name: str | None = None
    reason: str | None = None
    error: str | None = None
    exit_code: int | None = None
    placement_summary: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    at: datetime
    # A Job left behind unreachable, fenced off in the same local activity as the
    # transition that leaves it (one write round trip less per moved task).
    orphan: RecordOrphanInput | None = None


class RecordStatusResult(BaseModel):
    recorded: bool


class UpdateSpecInput(BaseModel):
    task_id: str
    spec: TaskSpec


class UpdateSpecResult(BaseModel):
    updated: bool


class PlaceTaskInput(BaseModel):
    task_id: str
    spec: TaskSpec
    attempt: int
    seq: int
    excluded_regions: dict[str, str] = Field(default_factory=dict)


class PlaceTaskResult(BaseModel):
    region: str | None
    reason: str
    summary: dict[str, Any]
    fingerprint: str = ""
    # Placement chose the region's serverless pods: the plan the Job is created with.
    burst: BurstPlan | None = None


class RecordOrphanInput(BaseModel):
    task_id: str
    region: str
    job_name: str
    attempt: int
    reason: str
    at: datetime
    # None: not known (a create that never answered; the job sweep finds it by labels).
    namespace: str | None = None
