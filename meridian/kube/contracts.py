"""Inputs and results of the unit worker's Job activities and the Job status news.

Names and shapes are the wire contract with Temporal: new fields get defaults so that
running histories keep decoding.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from meridian.serverless.plan import BurstPlan
from meridian.tasks.spec import TaskSpec


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
    # The Job's namespace (its unit's); None from senders that predate namespaces.
    namespace: str | None = None


class EnsureNamespaceInput(BaseModel):
    region: str
    business_unit: str


class EnsureNamespaceResult(BaseModel):
    namespace: str  # the unit's, ready for its Jobs: labelled, its policies and quota in


# The ApplicationError type of a create refused because the namespace is not prepared.
NAMESPACE_NOT_READY = "NamespaceNotReady"


class CreateJobInput(BaseModel):
    task_id: str
    spec: TaskSpec
    attempt: int
    region: str
    # The namespace ensure_namespace answered (the workflow prepares it first, with a
    # budget of its own). None: from a workflow that predates that step; the unit worker
    # names and makes it in the create. Inputs recorded before namespaces existed say
    # "meridian", where their Jobs went.
    namespace: str | None = None
    # With no namespace: create only if this unit worker has prepared the unit's
    # namespace in the region already (it answers from memory, sending no request);
    # otherwise fail at once with NAMESPACE_NOT_READY, and the workflow prepares it in
    # a step of its own (ensure_namespace, with its own budget) and creates again. Most
    # tasks then skip that step, three history events and a task-queue round trip.
    only_if_namespace_ready: bool = False
    # Set when placement chose the region's serverless pods: the Job is steered and sized
    # by it (meridian.serverless.plan).
    burst: BurstPlan | None = None


class CreateJobResult(BaseModel):
    job_name: str
    created: bool  # False: it already existed (a retried create), which is success
    # Where the Job is; results recorded before namespaces existed: the services' one.
    namespace: str = "meridian"


class JobRef(BaseModel):
    task_id: str
    attempt: int
    region: str
    job_name: str
    # None: not known (a create that never answered); the Job is looked for by labels.
    namespace: str | None = "meridian"


class DeleteJobResult(BaseModel):
    deleted: bool  # False: it was already gone


class JobKey(BaseModel):
    job_name: str
    task_id: str
    attempt: int
    phase: JobPhase
    observation: JobObservation | None = None
    namespace: str = "meridian"


class ListJobKeysInput(BaseModel):
    region: str
    page_size: int = 500


class ListJobKeysResult(BaseModel):
    region: str
    jobs: list[JobKey]
    requests: int = 0


class DeleteJobsInput(BaseModel):
    region: str
    job_names: list[str]
    # Job name -> its namespace; a name not in it is in the services' namespace (inputs
    # recorded before namespaces existed have none).
    namespaces: dict[str, str] = Field(default_factory=dict)


class DeleteJobsResult(BaseModel):
    region: str
    deleted: list[str] = Field(default_factory=list)
    requests: int = 0
