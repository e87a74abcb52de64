"""The compensating sweeps' contract: workflows, schedules, inputs and results."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from meridian.kube.contracts import JobKey
from meridian.tasks.spec import TaskStatus

RUNNING_SWEEP_WORKFLOW = "RunningTaskSweepWorkflow"
JOB_SWEEP_WORKFLOW = "JobSweepWorkflow"
RUNNING_SWEEP_SCHEDULE_ID = "meridian-sweep-running-tasks"
JOB_SWEEP_SCHEDULE_ID = "meridian-sweep-jobs"


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
    # Tasks read per database page; every unstarted task is looked at, page after page.
    limit: int = 200


class ResumeUnstartedResult(BaseModel):
    checked: int = 0
    started: int = 0  # started now, or found running
    failed: int = 0  # could not be started (each also noted on its task)
    errors: list[str] = Field(default_factory=list)  # "task: why", the first few
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
    resume_failed: int = 0  # tasks whose missing workflow it could not start
    resume_errors: list[str] = Field(default_factory=list)
    db_queries: int = 0  # statements of the central activities outside the regions'
