"""Inputs and results of every workflow, signal, update and activity.

One input, one result, each a pydantic model: adding a field later breaks nothing that
is already running. Names here are the wire contract with Temporal (the Web UI and the
`temporal` CLI see them), so they never change once released.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from meridian.models import TaskPatch, TaskSpec, TaskStatus
from meridian.timing import WorkflowTiming

# Workflow types and ids
TASK_WORKFLOW = "TaskWorkflow"
REGION_MONITOR_WORKFLOW = "RegionMonitorWorkflow"
REGION_MONITOR_ID = "meridian-region-monitor"
RUNNING_SWEEP_WORKFLOW = "RunningTaskSweepWorkflow"
JOB_SWEEP_WORKFLOW = "JobSweepWorkflow"
RUNNING_SWEEP_SCHEDULE_ID = "meridian-sweep-running-tasks"
JOB_SWEEP_SCHEDULE_ID = "meridian-sweep-jobs"
REGION_CONTROL_WORKFLOW = "RegionControlWorkflow"

# Signals and updates of TaskWorkflow (usable from `temporal workflow signal`)
SIGNAL_JOB_STATUS = "job_status"
SIGNAL_STOP = "stop"
SIGNAL_INFRA_FAILURE = "infra_failure"
SIGNAL_RESIDENT_STATUS = "resident_status"
# Signal of RegionMonitorWorkflow: a unit worker saw its region's API fail (a watch cut,
# a refused connection) and asks for a probe now instead of at the next tick.
SIGNAL_REGION_SUSPECT = "region_suspect"
UPDATE_MODIFY = "modify"
QUERY_STATE = "state"

# Search attributes registered on the Temporal server (`meridian up` does it)
SA_STATUS = "MeridianStatus"
SA_REGION = "MeridianRegion"
SA_BUSINESS_UNIT = "MeridianBusinessUnit"
SA_KIND = "MeridianKind"
SEARCH_ATTRIBUTES = (SA_STATUS, SA_REGION, SA_BUSINESS_UNIT, SA_KIND)

# Kubernetes labels, annotations and env on every Job Meridian creates
LABEL_MANAGED = "meridian.io/managed"
LABEL_TASK_ID = "meridian.io/task-id"
LABEL_ATTEMPT = "meridian.io/attempt"
LABEL_BUSINESS_UNIT = "meridian.io/business-unit"
ANNOTATION_STATUS_PORT = "meridian.io/status-port"
ENV_ATTEMPT = "MERIDIAN_ATTEMPT"
ENV_TASK_ID = "MERIDIAN_TASK_ID"
MANAGED_SELECTOR = f"{LABEL_MANAGED}=true"


def region_task_queue(region: str) -> str:
    return f"region.{region}"


def region_health_queue(region: str) -> str:
    """The region's probe queue, apart from its Job work: a backlog of creates and sweeps
    must not make a busy but healthy region look dead (and have its tasks moved)."""
    return f"region.{region}.health"


class JobPhase(StrEnum):
    PENDING = "pending"  # created; pod not running yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    MISSING = "missing"  # the Job does not exist (deleted, or never created)


class FailureKind(StrEnum):
    APPLICATION = "application"  # non-zero exit on a healthy node: retry policy
    INFRASTRUCTURE = "infrastructure"  # node lost, region down, unschedulable: move


class JobObservation(BaseModel):
    """What one status channel saw of one attempt's Job."""

    task_id: str
    attempt: int
    region: str
    job_name: str
    phase: JobPhase
    resource_version: int = 0
    source: str = "watch"  # watch | websocket | running-sweep | job-sweep | backstop
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    failure_kind: FailureKind | None = None
    node_name: str | None = None
    unschedulable_since: datetime | None = None
    observed_at: datetime | None = None
    # Resident tasks announce their WebSocket status port on the pod template.
    status_port: int | None = None


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


# Activities --------------------------------------------------------------------------


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


class CreateJobInput(BaseModel):
    task_id: str
    spec: TaskSpec
    attempt: int
    region: str
    namespace: str = "meridian"


class CreateJobResult(BaseModel):
    job_name: str
    created: bool  # False: it already existed (a retried create), which is success


class JobRef(BaseModel):
    task_id: str
    attempt: int
    region: str
    job_name: str
    namespace: str = "meridian"


class DeleteJobResult(BaseModel):
    deleted: bool  # False: it was already gone


class ListJobsInput(BaseModel):
    region: str
    namespace: str = "meridian"
    page_size: int = 500
    task_ids: list[str] | None = None


class ListJobsResult(BaseModel):
    region: str
    observations: list[JobObservation]
    requests: int = 0


class RegionProbeInput(BaseModel):
    region: str


class RegionProbeResult(BaseModel):
    region: str
    reachable: bool
    error: str | None = None
    # Share of the probe's requests the API answered with 429/5xx (retried ones count):
    # an API that answers is there, however badly; this says how badly.
    api_error_rate: float = 0.0
    # Wall time of the probe's API requests (sent together): how slow the API answers.
    api_latency_ms: float = 0.0
    snapshot: dict[str, Any] = Field(default_factory=dict)


class RecordOrphanInput(BaseModel):
    task_id: str
    region: str
    job_name: str
    attempt: int
    reason: str
    at: datetime


class RegionHealthInput(BaseModel):
    region: str


class RegionHealthResult(BaseModel):
    region: str
    down: bool
    state: str = "unknown"
    reason: str = ""


class ProbeOutcome(BaseModel):
    region: str
    reachable: bool
    worker_answered: bool
    error: str | None = None
    api_error_rate: float = 0.0
    api_latency_ms: float = 0.0
    snapshot: dict[str, Any] = Field(default_factory=dict)


class RegionSuspect(BaseModel):
    region: str
    reason: str = ""


class AssessRegionsInput(BaseModel):
    probes: list[ProbeOutcome]
    at: datetime


class RegionTransition(BaseModel):
    region: str
    state: str
    reason: str


class AssessRegionsResult(BaseModel):
    states: dict[str, str] = Field(default_factory=dict)
    newly_down: list[RegionTransition] = Field(default_factory=list)
    recovered: list[RegionTransition] = Field(default_factory=list)
    # Seconds until the earliest failing region's grace period runs out: the monitor
    # checks again right then, so "down" is declared on time, not up to a tick late.
    next_deadline_seconds: float | None = None

    def note(self, region: str, previous: str | None, state: str, reason: str) -> None:
        """Record `region`'s state; a move into or out of "down" is a transition the
        monitor acts on (fence and move its tasks, or sweep its stale Jobs)."""
        self.states[region] = state
        transition = RegionTransition(region=region, state=state, reason=reason)
        if state == "down" and previous != "down":
            self.newly_down.append(transition)
        elif previous == "down" and state != "down":
            self.recovered.append(transition)


class TriggerSweepInput(BaseModel):
    schedule_id: str
    reason: str


class SignalRegionTasksInput(BaseModel):
    region: str
    reason: str


class SignalRegionTasksResult(BaseModel):
    signalled: int


# Of a probe's start-to-close time, what is kept for the network samples and the reply;
# the rest is the region API's.
PROBE_REPLY_RESERVE_SECONDS = 1.0


def probe_api_budget_seconds(probe_seconds: float) -> float:
    """How long a probe given `probe_seconds` to finish may wait for the region's API."""
    return max(0.5, probe_seconds - PROBE_REPLY_RESERVE_SECONDS)


class RegionMonitorInput(BaseModel):
    regions: list[str]
    interval_seconds: float = 2.0
    # A probe no unit worker picks up within this long: the worker is not polling.
    probe_timeout_seconds: float = 3.0
    # A probe taken up has this long to answer: the API's time to reply is in it, so a
    # slow region reads slow (degraded), and only one that does not answer reads down.
    probe_api_timeout_seconds: float = 5.0
    iterations_before_rollover: int = 200


class ExpectedJob(BaseModel):
    """What the database says about one active task, compactly, for the sweeps."""

    task_id: str
    attempt: int
    status: TaskStatus
    job_name: str | None = None


class RegionTasksInput(BaseModel):
    region: str


class RegionTasksResult(BaseModel):
    region: str
    tasks: list[ExpectedJob]
    db_queries: int = 0  # statements the central side sent for it


class SweepRunningInput(BaseModel):
    region: str
    tasks: list[ExpectedJob]
    page_size: int = 500


class SweepRegionResult(BaseModel):
    region: str
    jobs_seen: int = 0
    found: dict[str, int] = Field(default_factory=dict)
    fixed: dict[str, int] = Field(default_factory=dict)
    requests: int = 0
    error: str | None = None
    db_queries: int = 0  # statements the central side sent for it


class JobKey(BaseModel):
    job_name: str
    task_id: str
    attempt: int
    phase: JobPhase
    observation: JobObservation | None = None


class ListJobKeysInput(BaseModel):
    region: str
    page_size: int = 500


class ListJobKeysResult(BaseModel):
    region: str
    jobs: list[JobKey]
    requests: int = 0


class ReconcileJobsInput(BaseModel):
    region: str
    jobs: list[JobKey]


class ReconcileJobsResult(BaseModel):
    region: str
    delete: list[str] = Field(default_factory=list)
    found: dict[str, int] = Field(default_factory=dict)
    fixed: dict[str, int] = Field(default_factory=dict)
    report: list[str] = Field(default_factory=list)
    db_queries: int = 0  # statements the central side sent for it


class DeleteJobsInput(BaseModel):
    region: str
    job_names: list[str]


class DeleteJobsResult(BaseModel):
    region: str
    deleted: list[str] = Field(default_factory=list)
    requests: int = 0


class MarkOrphansDeletedInput(BaseModel):
    region: str
    job_names: list[str]
    at: datetime


class SweepInput(BaseModel):
    regions: list[str]
    page_size: int = 500
    region_timeout_seconds: float = 20.0
    # A task recorded SCHEDULING this long with no workflow behind it is started by
    # the running-task sweep (the API died between writing the row and starting it).
    unstarted_after_seconds: float = 30.0


class ResumeUnstartedInput(BaseModel):
    older_than_seconds: float
    at: datetime
    limit: int = 200


class ResumeUnstartedResult(BaseModel):
    checked: int = 0
    started: int = 0
    db_queries: int = 0  # statements the central side sent for it


class SweepResult(BaseModel):
    kind: str
    regions: list[SweepRegionResult] = Field(default_factory=list)


class RecordSweepInput(BaseModel):
    kind: str
    started_at: datetime
    finished_at: datetime
    regions: list[SweepRegionResult]
    resumed: int = 0  # tasks whose missing workflow the sweep started
    db_queries: int = 0  # statements of the central activities outside the regions'
