"""Response and request schemas of /v1/regions/{name} and its scaling sub-resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import RegionPublic
from meridian.regions.models import RegionHealth
from meridian.scaling import ScalingMode


class WaterLevelPoint(BaseModel):
    at: datetime
    level: float
    cpu_requested_millis: int
    cpu_allocatable_millis: int
    memory_requested_bytes: int
    memory_allocatable_bytes: int


class RegionEventPublic(BaseModel):
    """A change of the region's health state (up, degraded, down) and why."""

    at: datetime
    state: RegionHealth
    previous_state: RegionHealth | None = None
    reason: str


class RegionEventList(BaseModel):
    items: list[RegionEventPublic]


class PoolPublic(BaseModel):
    name: str
    min: int
    desired: int
    max: int
    current: int
    ready: int
    autoscaler_enabled: bool = False
    driver: str | None = None


class RegionDetail(RegionPublic):
    """The list entry's health fields, plus the control loop's view of the region."""

    scaling_mode: ScalingMode
    draining: bool = False
    draining_reason: str | None = None
    # The control loop's burst advisory (auto mode): while it stands, `auto` tasks the
    # nodes turn away for room run on the region's serverless pods.
    burst_advised: bool = False
    burst_reason: str | None = None
    burst_since: datetime | None = None
    # When the control loop last observed the region (pools are as of then).
    scaling_observed_at: datetime | None = None
    pools: list[PoolPublic] = Field(default_factory=list)
    pending_demand: dict[str, int] = Field(default_factory=dict)
    # Newest first.
    water_level_history: list[WaterLevelPoint] = Field(default_factory=list)
    # Health state changes, newest first.
    events: list[RegionEventPublic] = Field(default_factory=list)


class ScalingDecisionPublic(BaseModel):
    id: str
    at: datetime
    kind: str
    target: str
    reason: str
    applied: bool
    numbers: dict[str, Any]


class ScalingDecisionList(BaseModel):
    region: str
    mode: ScalingMode
    # Newest first.
    items: list[ScalingDecisionPublic]


class ScalingModeUpdate(BaseModel):
    mode: ScalingMode


class ScalingModePublic(BaseModel):
    region: str
    mode: ScalingMode
    changed: bool
