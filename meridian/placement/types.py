"""Inputs and outputs of placement. Pydantic models: they travel through Temporal
(`pydantic_data_converter`), are stored with each decision and served by the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from meridian.placement.format import cpu_text, memory_text
from meridian.regions.load import ServerlessUsage, pods_free, water_level
from meridian.regions.models import RegionHealth
from meridian.regions.network import NetworkPath
from meridian.regions.providers import Provider
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import BurstPlan
from meridian.settings import PlacementWeights
from meridian.tasks.spec import (
    Capacity,
    DataSource,
    PlacementConstraints,
    Resources,
    TaskSpec,
    capacity_for,
)

_M = TypeVar("_M", bound=BaseModel)


def trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """Build a model from values placement computed itself, skipping validation.

    What `model_construct` does, minus its per-field default handling, which costs more
    than the rest of scoring a region: every field must be given. The result compares,
    serialises and re-validates like a validated model (tests hold it to that).
    """
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class ServerlessRoom(BaseModel):
    """A region's declared serverless capacity and what the probe saw running on it."""

    config: ServerlessConfig
    # None: the probe has not seen the virtual node (not probed yet, or not there).
    usage: ServerlessUsage | None = None


class PoolFacts(BaseModel):
    """What bursting is weighed against: the region's pools as the regions file states
    them, and whether the probe sees them at their ceiling."""

    at_ceiling: bool = False
    # The fastest boot of a pool that can still grow; None when no pool states one.
    boot_seconds: float | None = None
    # The cheapest stated node price per hour, and that node's size.
    price_per_hour: float | None = None
    node_cpu_millis: int = 0
    node_memory_bytes: int = 0


class ReservedRoom(BaseModel):
    """What placement gave away in a region since the probe behind its snapshot: tasks it
    sent there whose pods that probe cannot have counted yet (meridian/placement/
    reservations.py). Already subtracted from the snapshot's free room; kept here so
    that the reasons can say so."""

    nodes_tasks: int = Field(0, ge=0)
    nodes_cpu_millis: int = Field(0, ge=0)
    nodes_memory_bytes: int = Field(0, ge=0)
    # Billed sizes, as the quota counts them.
    serverless_tasks: int = Field(0, ge=0)
    serverless_cpu_millis: int = Field(0, ge=0)
    serverless_memory_bytes: int = Field(0, ge=0)

    def nodes_text(self) -> str:
        return (
            f"{_tasks(self.nodes_tasks)} placed on nodes since the last probe reserved "
            f"{cpu_text(self.nodes_cpu_millis)} CPU, {memory_text(self.nodes_memory_bytes)}"
        )

    def serverless_text(self) -> str:
        return (
            f"{_tasks(self.serverless_tasks)} burst since the last probe reserved "
            f"{cpu_text(self.serverless_cpu_millis)} CPU, "
            f"{memory_text(self.serverless_memory_bytes)}"
        )


def _tasks(count: int) -> str:
    return "1 task" if count == 1 else f"{count} tasks"


class RegionSnapshot(BaseModel):
    """One region as the health loop last saw it, from the Kubernetes API and Temporal."""

    name: str
    provider: Provider
    location: str = Field(description="the provider's region id, a catalog key")
    healthy: bool = True
    health_reason: str | None = None
    # Up, degraded or down (a region not reported yet reads as down).
    state: RegionHealth = RegionHealth.UP
    worker_polling: bool = True
    nodes_ready: int = Field(0, ge=0)
    nodes_total: int = Field(0, ge=0)
    cpu_allocatable_millis: int = Field(0, ge=0)
    cpu_requested_millis: int = Field(0, ge=0)
    memory_allocatable_bytes: int = Field(0, ge=0)
    memory_requested_bytes: int = Field(0, ge=0)
    # The most free on any single Ready, schedulable node: a pod cannot span nodes, so a
    # region's total free capacity says nothing about whether one task fits.
    largest_free_cpu_millis: int = Field(0, ge=0)
    largest_free_memory_bytes: int = Field(0, ge=0)
    # Pod slots of the same nodes and the live pods holding them; 0 allocatable is
    # unknown (a node that does not report its slots, a snapshot from before they were
    # counted): no filter on slots then.
    pods_allocatable: int = Field(0, ge=0)
    pods_live: int = Field(0, ge=0)
    pending_pods: int = Field(0, ge=0)
    api_error_rate: float = Field(0.0, ge=0, le=1)
    draining: bool = False
    network: dict[str, NetworkPath] = Field(
        default_factory=dict, description="smoothed paths keyed by data-source key"
    )
    # When the probe that measured the load above started (None: never answered).
    observed_at: datetime | None = None
    serverless: ServerlessRoom | None = None
    pools: PoolFacts = Field(default_factory=PoolFacts)
    # The region control loop chose bursting over growing a pool (its advisory stands):
    # an `auto` task the nodes turn away for room bursts, whatever the pools' facts say.
    burst_advised: bool = False
    burst_advice: str | None = None
    # Placements since `observed_at`, already subtracted from the free room above.
    reserved: ReservedRoom | None = None

    @property
    def water_level(self) -> float:
        """As `meridian.regions.load.water_level` defines it (edges included)."""
        return water_level(
            self.cpu_requested_millis,
            self.memory_requested_bytes,
            self.cpu_allocatable_millis,
            self.memory_allocatable_bytes,
        )

    @property
    def pods_free(self) -> int | None:
        """Free pod slots, None when unknown (`meridian.regions.load.pods_free`)."""
        return pods_free(self.pods_allocatable, self.pods_live)


class PlacementRequest(BaseModel):
    task_id: str
    data_source: DataSource
    resources: Resources = Field(default_factory=Resources)
    constraints: PlacementConstraints = Field(default_factory=PlacementConstraints)
    # Regions where an earlier attempt failed for infrastructure reasons.
    excluded_regions: list[str] = Field(default_factory=list)
    exclusion_reasons: dict[str, str] = Field(default_factory=dict)
    # The capacity the task may use, resolved (`capacity_for`: resident + auto = nodes).
    capacity: Capacity = Capacity.AUTO

    @classmethod
    def for_task(
        cls,
        task_id: str,
        spec: TaskSpec,
        excluded_regions: Iterable[str] = (),
        exclusion_reasons: dict[str, str] | None = None,
    ) -> PlacementRequest:
        return cls(
            task_id=task_id,
            data_source=spec.data_source,
            resources=spec.job.resources,
            constraints=spec.placement,
            excluded_regions=list(excluded_regions),
            exclusion_reasons=dict(exclusion_reasons or {}),
            capacity=capacity_for(spec),
        )


class FilterCode(StrEnum):
    """Why a region was filtered out, as a stable code (the reason is the sentence)."""

    EXCLUDED = "excluded"
    CONSTRAINT = "constraint"
    DOWN = "down"
    NOT_POLLING = "not_polling"
    DRAINING = "draining"
    SATURATED = "saturated"
    NO_NODES = "no_nodes"
    CAPACITY = "capacity"


class FilteredRegion(BaseModel):
    region: str
    code: FilterCode
    reason: str


class CandidateScore(BaseModel):
    """A region that passed every hard filter, with its score and why."""

    region: str
    total: float
    locality: float
    network: float
    load: float
    tier: int
    # Subtracted from the score for running on serverless pods (0 on nodes).
    cost: float = 0.0
    # Human-readable reason per component: locality, network, load, tier; and capacity
    # when the task would burst.
    details: dict[str, str] = Field(default_factory=dict)
    # Set when the task would run on the region's serverless pods.
    burst: BurstPlan | None = None


class PlacementDecision(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="constants")

    task_id: str
    chosen: str | None
    reason: str
    # Ranked: (tier, -total, name). candidates[0] is the chosen one when there is one.
    candidates: list[CandidateScore] = Field(default_factory=list)
    # Sorted by region name.
    filtered: list[FilteredRegion] = Field(default_factory=list)
    weights: PlacementWeights
    # Set by the caller (placement is pure and reads no clock).
    decided_at: datetime | None = None
    # Hash of the inputs that can change this decision; the engine re-places an
    # unplaceable task only when it changes.
    snapshot_fingerprint: str

    @property
    def placeable(self) -> bool:
        return self.chosen is not None
