"""Inputs and outputs of RegionControlWorkflow and its activities.

Kept apart from `meridian.contracts` (the task lifecycle's contracts) so that the two
loops can evolve without touching each other. Every model is pydantic and travels
through Temporal with `pydantic_data_converter`; new fields get defaults so running
histories keep decoding.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from meridian.regions.load import ServerlessUsage
from meridian.scaling import (
    Decision,
    PoolObservation,
    RegionObservation,
    Request,
    ScalingMode,
    ScalingState,
)

REGION_CONTROL_WORKFLOW = "RegionControlWorkflow"
REGION_CONTROL_ID_PREFIX = "meridian-region-control-"


def region_control_id(region: str) -> str:
    return f"{REGION_CONTROL_ID_PREFIX}{region}"


class RegionControlInput(BaseModel):
    region: str
    # Ticks per run before continue-as-new: each tick adds ~10-20 events, so a few
    # hundred keeps the history far below Temporal's limits.
    ticks_before_rollover: int = Field(200, ge=1)
    # Used until the first decide answers with the configured tick (which may change
    # with the central service's settings without restarting this workflow).
    tick_seconds: float = Field(10.0, gt=0)
    observe_timeout_seconds: float = Field(20.0, gt=0)
    state: ScalingState = Field(default_factory=ScalingState)
    # Keys (kind:cause:target) of `none` decisions recorded on the previous tick: a
    # hold that persists is reported once, not every tick.
    quiet: list[str] = Field(default_factory=list)


class RegionControlStatus(BaseModel):
    """What the workflow's `status` query answers (also visible in the Temporal UI)."""

    region: str
    ticks: int = 0
    mode: ScalingMode | None = None
    water_level: float | None = None
    last_tick_at: datetime | None = None
    last_error: str | None = None
    actions: int = 0


# -- what the control loop keeps in the region's state ----------------------------------


class ScalingSummary(BaseModel):
    """The control loop's last tick, as `GET /v1/regions/{name}` shows it."""

    mode: ScalingMode
    water_level: float
    at: datetime
    # As observed on that tick.
    pools: list[PoolObservation] = Field(default_factory=list)
    # Pools whose provider could not be read (name -> error).
    pool_errors: dict[str, str] = Field(default_factory=dict)
    # Unschedulable pods, and Meridian tasks placement turned away for want of room.
    pending_pods: int = 0
    waiting_tasks: int = 0


class ControlDetails(BaseModel):
    """The control loop's part of a region's state details. The control loop alone writes
    these (`merge_region_details`); the region monitor, which rewrites the rest of the
    details every probe, carries them over (`CONTROL_DETAIL_KEYS`)."""

    # Placement leaves the region alone: near its ceiling with no room to grow.
    draining: bool = False
    draining_reason: str | None = None
    scaling: ScalingSummary | None = None
    # The burst advisory (meridian/scaling/burst.py), `auto` mode only: while it stands,
    # placement sends `auto` tasks the nodes turn away for room to serverless pods.
    burst_advised: bool = False
    burst_reason: str | None = None
    burst_since: datetime | None = None


CONTROL_DETAIL_KEYS: tuple[str, ...] = tuple(ControlDetails.model_fields)


# -- unit side (region task queue) -----------------------------------------------------


class ObserveRegionInput(BaseModel):
    region: str


class ObserveRegionResult(BaseModel):
    observation: RegionObservation
    # Pods the scheduler reported Unschedulable (namespace/name ids).
    pending_pods: list[Request] = Field(default_factory=list)
    # Pools whose provider could not be read this tick (name -> error).
    pool_errors: dict[str, str] = Field(default_factory=dict)
    # What runs on the region's serverless (virtual) nodes; None: none listed.
    serverless: ServerlessUsage | None = None


class NodeActionInput(BaseModel):
    region: str
    node: str


class NodeActionResult(BaseModel):
    node: str
    changed: bool


class DrainNodeInput(BaseModel):
    region: str
    node: str
    # Meridian task pods are not evicted: their workflows move them (new attempt in a
    # healthy place, old Job deleted), which an eviction would race with.
    skip_meridian_tasks: bool = True
    grace_period_seconds: int | None = None


class DrainNodeResult(BaseModel):
    node: str
    evicted: list[str] = Field(default_factory=list)
    # Evictions a PodDisruptionBudget refused (HTTP 429): tried again on a later tick.
    blocked: list[str] = Field(default_factory=list)
    skipped_tasks: list[str] = Field(default_factory=list)


class ScalePoolInput(BaseModel):
    region: str
    pool: str
    desired: int = Field(ge=0)


class RemoveNodesInput(BaseModel):
    region: str
    pool: str
    nodes: list[str]


class PoolActionResult(BaseModel):
    pool: str
    desired_before: int
    desired_after: int
    removed: list[str] = Field(default_factory=list)


# -- central side (local activities) ----------------------------------------------------


class DecideScalingInput(BaseModel):
    region: str
    at: datetime
    observed: ObserveRegionResult
    state: ScalingState
    quiet: list[str] = Field(default_factory=list)


class DecideScalingResult(BaseModel):
    mode: ScalingMode
    water_level: float
    decisions: list[Decision]
    state: ScalingState
    quiet: list[str] = Field(default_factory=list)
    tick_seconds: float
    draining: bool = False


class MoveTasksInput(BaseModel):
    region: str
    node: str
    task_ids: list[str]
    # Starts with the policy's move reason ("scale-down", "node-unhealthy") so the
    # task's events say why it moved.
    reason: str


class MoveTasksResult(BaseModel):
    signalled: int


class RecordOutcomeInput(BaseModel):
    region: str
    at: datetime
    decision: Decision
    error: str


class RecordOutcomeResult(BaseModel):
    recorded: bool
