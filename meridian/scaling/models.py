"""Inputs, outputs and persisted state of the scaling policy.

All pydantic, so they travel through Temporal (`pydantic_data_converter`) and the REST
API unchanged. Times are seconds since the epoch as floats (the control workflow passes
`workflow.now().timestamp()`), which keeps the policy free of clocks and time zones.
CPU is in millicores, memory in bytes, as everywhere in Meridian.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from meridian.regions.load import PRESSURE_CONDITIONS, ServerlessUsage, water_level
from meridian.serverless.models import ServerlessConfig
from meridian.settings import ScalingSettings


class ScalingMode(StrEnum):
    """What a region's control loop may do. `auto`: decide and act; `advise`: decide
    and record, act on nothing (placement included); `off`: only keep its node memory
    current. A region is `auto` until someone sets another mode."""

    AUTO = "auto"
    ADVISE = "advise"
    OFF = "off"


class NodeObservation(BaseModel):
    name: str
    pool: str
    ready: bool
    # Pressure conditions that are currently True (subset of PRESSURE_CONDITIONS).
    conditions: list[str] = Field(default_factory=list)
    unschedulable: bool = False
    cpu_allocatable: int = Field(0, ge=0)
    mem_allocatable: int = Field(0, ge=0)
    cpu_requested: int = Field(0, ge=0)
    mem_requested: int = Field(0, ge=0)
    # Meridian tasks with a running pod on this node.
    task_ids: list[str] = Field(default_factory=list)
    # Non-Meridian, non-DaemonSet pods (they block nothing but are evicted on drain).
    other_pods: int = Field(0, ge=0)
    # Node creation time (metadata.creationTimestamp); None: the policy uses first sight.
    created_at: float | None = None

    @property
    def under_pressure(self) -> list[str]:
        return [c for c in self.conditions if c in PRESSURE_CONDITIONS]

    @property
    def healthy(self) -> bool:
        return self.ready and not self.under_pressure

    @property
    def utilisation(self) -> float:
        return water_level(
            self.cpu_requested, self.mem_requested, self.cpu_allocatable, self.mem_allocatable
        )


class PoolObservation(BaseModel):
    name: str
    min: int = Field(ge=0)
    desired: int = Field(ge=0)
    max: int = Field(ge=0)
    current: int = Field(0, ge=0)
    ready: int = Field(0, ge=0)
    autoscaler_enabled: bool = False
    # Allocatable of one new node; 0 means: learn it from the pool's existing nodes.
    node_cpu: int = Field(0, ge=0)
    node_mem: int = Field(0, ge=0)
    # As the regions file states them (filled in centrally): what a node costs per hour
    # and how long a new one takes to be Ready. None: not stated.
    price_per_hour: float | None = None
    boot_seconds: float | None = None


class RegionObservation(BaseModel):
    region: str
    at: float
    pools: list[PoolObservation] = Field(default_factory=list)
    nodes: list[NodeObservation] = Field(default_factory=list)


class Request(BaseModel):
    """One unit of demand: a pending pod that does not fit, or a Meridian task waiting
    to be placed in this region."""

    id: str
    cpu: int = Field(0, ge=0)
    mem: int = Field(0, ge=0)
    # A Meridian task that may run on serverless pods (`placement.capacity: auto`, not
    # resident): the control loop may burst it instead of growing a pool for it.
    burstable: bool = False


class PendingDemand(BaseModel):
    # Pods the scheduler reported unschedulable for lack of resources.
    pending_pods: list[Request] = Field(default_factory=list)
    # Meridian tasks placement has chosen this region for but not yet created.
    waiting_tasks: list[Request] = Field(default_factory=list)

    @property
    def cpu(self) -> int:
        return sum(r.cpu for r in self.pending_pods + self.waiting_tasks)

    @property
    def mem(self) -> int:
        return sum(r.mem for r in self.pending_pods + self.waiting_tasks)


class CordonReason(StrEnum):
    UNHEALTHY = "unhealthy"
    SCALE_DOWN = "scale-down"


class CordonRecord(BaseModel):
    reason: CordonReason
    at: float
    # When a drain was last requested (re-requested while pods remain).
    drained_at: float | None = None


class ScalingState(BaseModel):
    """What the policy remembers between ticks; small and bounded by the node count."""

    last_scale_up_at: float | None = None
    last_scale_down_at: float | None = None
    above_high_since: float | None = None
    below_low_since: float | None = None
    # Nodes Meridian cordoned itself; only these are ever uncordoned by Meridian.
    cordoned: dict[str, CordonRecord] = Field(default_factory=dict)
    not_ready_since: dict[str, float] = Field(default_factory=dict)
    healthy_since: dict[str, float] = Field(default_factory=dict)
    first_seen: dict[str, float] = Field(default_factory=dict)
    ever_ready: list[str] = Field(default_factory=list)
    # The burst advisory: since when the loop chose bursting over growing, and why. It
    # stands until the pools have room again (see meridian/scaling/burst.py).
    burst_since: float | None = None
    burst_reason: str | None = None
    # The smallest task it sent to serverless pods: a node with this much free again is
    # "room again" (the water level alone cannot say whether such a task fits a node).
    burst_task_cpu: int = 0
    burst_task_mem: int = 0


class DecisionKind(StrEnum):
    CORDON = "cordon"
    DRAIN = "drain"
    UNCORDON = "uncordon"
    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    MOVE_TASKS = "move_tasks"
    # Serverless pods rather than a new node for waiting `auto` tasks: the loop publishes
    # a burst advisory that placement reads.
    BURST = "burst"
    NONE = "none"


class Cause(StrEnum):
    PENDING_DEMAND = "pending-demand"
    HIGH_WATER = "high-water"
    LOW_WATER = "low-water"
    UNHEALTHY = "unhealthy"
    HEALTHY = "healthy"
    GIVE_UP = "give-up"
    HOLD = "hold"
    # The pools have room again (or growing wins again): the burst advisory lapses.
    ROOM = "room"


class GrowOption(BaseModel):
    """Growing a pool for the waiting demand, as the control loop weighed it."""

    # The pool that would grow; None when no pool can (ceiling reached).
    pool: str | None = None
    nodes_needed: int = 0
    boot_seconds: float | None = None
    price_per_hour: float | None = None  # one node
    cost_per_hour: float | None = None  # nodes_needed nodes
    ceiling_reached: bool = False


class BurstOption(BaseModel):
    """Bursting the waiting `auto` tasks to the region's serverless pods."""

    kind: str
    tasks: int = 0
    # Left of the declared quota, as the last observation saw the virtual node.
    headroom_pods: int = 0
    headroom_cpu_millis: int = 0
    headroom_memory_bytes: int = 0
    cold_start_seconds: float = 0.0
    # The tasks' requests rounded up to the cloud's pod sizes, and their price.
    billed_cpu_millis: int = 0
    billed_memory_bytes: int = 0
    cost_per_hour: float = 0.0
    currency: str = ""
    # Why the serverless pods cannot take them (quota exhausted, NotReady, ...).
    unavailable: str | None = None


class BurstComparison(BaseModel):
    """The numbers behind a grow-or-burst choice, stored with the decision."""

    choice: str  # "grow" or "burst"
    waiting_tasks: int = 0
    burstable_tasks: int = 0
    pending_pods: int = 0
    max_wait_for_nodes_seconds: float = 0.0
    grow: GrowOption
    # None: the region declares no serverless capacity.
    burst: BurstOption | None = None


class Decision(BaseModel):
    kind: DecisionKind
    # A node name (cordon, drain, uncordon, move_tasks) or a pool name (scale_*), or the
    # region name for `none`.
    target: str
    cause: Cause
    reason: str
    at: float
    mode: ScalingMode
    pool: str | None = None
    nodes: list[str] = Field(default_factory=list)
    task_ids: list[str] = Field(default_factory=list)
    # `move_tasks` carries the failover reason the engine records on each task.
    move_reason: str | None = None
    water_level: float = 0.0
    high_water: float = 0.0
    low_water: float = 0.0
    demand_cpu: int = 0
    demand_mem: int = 0
    desired_before: int | None = None
    desired_after: int | None = None
    # Set where demand could burst: what growing and bursting would take and cost.
    comparison: BurstComparison | None = None

    @property
    def is_scale_action(self) -> bool:
        return self.kind in (DecisionKind.SCALE_UP, DecisionKind.SCALE_DOWN)

    @property
    def applies(self) -> bool:
        """Whether the executor should carry it out (only in `auto`)."""
        return self.mode == ScalingMode.AUTO and self.kind != DecisionKind.NONE


class PolicyTuning(BaseModel):
    """Knobs `ScalingSettings` does not carry (yet); defaults follow the Cluster
    Autoscaler where it has an equivalent."""

    # A node never Ready this long after creation is given up (CA max-node-provision-time).
    give_up_seconds: float = Field(900.0, gt=0)
    # A node Meridian cordoned is uncordoned once healthy for this many ticks, so a node
    # whose readiness flaps is not cordoned and uncordoned every tick.
    uncordon_after_ticks: int = Field(3, ge=1)
    # While pods remain on a cordoned node, ask for the drain / move again this often.
    drain_retry_seconds: float = Field(60.0, gt=0)
    # Water level that a scale action aims for; None: midway between low and high.
    target_water: float | None = Field(None, gt=0, le=1)


class BurstInput(BaseModel):
    """The region's serverless capacity, for weighing a burst against growing a pool."""

    config: ServerlessConfig
    # What runs on the virtual node; None: not seen (no virtual node listed).
    usage: ServerlessUsage | None = None
    # `burst.max_wait_for_nodes_seconds`: the most a task is worth waiting for a node.
    max_wait_for_nodes_seconds: float = Field(60.0, ge=0)


class PolicyInput(BaseModel):
    observation: RegionObservation
    demand: PendingDemand = Field(default_factory=PendingDemand)
    mode: ScalingMode = ScalingMode.AUTO
    state: ScalingState = Field(default_factory=ScalingState)
    # Built through model_validate: mypy without the pydantic plugin reads the
    # constrained defaults as required constructor arguments.
    settings: ScalingSettings = Field(default_factory=lambda: ScalingSettings.model_validate({}))
    tuning: PolicyTuning = Field(default_factory=lambda: PolicyTuning.model_validate({}))
    # None: the region declares no serverless capacity (grow only).
    burst: BurstInput | None = None


class PolicyResult(BaseModel):
    water_level: float
    decisions: list[Decision]
    state: ScalingState
