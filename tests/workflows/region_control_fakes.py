"""Same-name stand-ins for RegionControlWorkflow's activities: a scripted region whose
observations the test sets, the real (pure) scaling policy, and a log of every action.

For the workflow unit tests and the history recorder on the time-skipping server; the
scenarios in tests/scaling_loop run the real activities against kubesim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from meridian.queues import region_task_queue
from meridian.scaling import (
    NodeObservation,
    PendingDemand,
    PolicyInput,
    PoolObservation,
    RegionObservation,
    Request,
    ScalingMode,
    decide,
)
from meridian.scaling.contracts import (
    DecideScalingInput,
    DecideScalingResult,
    DrainNodeInput,
    DrainNodeResult,
    MoveTasksInput,
    MoveTasksResult,
    NodeActionInput,
    NodeActionResult,
    ObserveRegionInput,
    ObserveRegionResult,
    PoolActionResult,
    RecordOutcomeInput,
    RecordOutcomeResult,
    RemoveNodesInput,
    ScalePoolInput,
)
from meridian.settings import ScalingSettings
from workflows.region_control import RegionControlWorkflow

REGION = "aws-us-east-1"
CPU, MEM = 8000, 32 * 1024**3
SETTINGS = ScalingSettings(
    tick_seconds=10,
    scale_up_cooldown_seconds=60,
    scale_down_window_seconds=60,
    scale_down_cooldown_seconds=60,
)


def node(
    name: str, used: float = 0.0, ready: bool = True, tasks: list[str] | None = None
) -> NodeObservation:
    return NodeObservation(
        name=name,
        pool="general",
        ready=ready,
        cpu_allocatable=CPU,
        mem_allocatable=MEM,
        cpu_requested=int(CPU * used),
        mem_requested=int(MEM * used / 2),
        task_ids=tasks or [],
    )


@dataclass
class FakeRegion:
    nodes: list[NodeObservation] = field(default_factory=lambda: [node("n0", 0.5), node("n1", 0.5)])
    desired: int = 2
    pending: list[Request] = field(default_factory=list)
    mode: ScalingMode = ScalingMode.AUTO
    actions: list[tuple[str, Any]] = field(default_factory=list)
    decisions: list[Any] = field(default_factory=list)
    failures: list[RecordOutcomeInput] = field(default_factory=list)
    fail_scale: bool = False
    # Node states to show on later ticks: the first observation shows `nodes`, each later
    # one takes the next entry (the last one stays). Scripted per tick, not per wall-clock
    # second, so a slow worker start-up cannot skip a state the test depends on.
    later_nodes: list[list[NodeObservation]] = field(default_factory=list)
    observations: int = 0

    def observation(self) -> RegionObservation:
        if self.observations > 0 and self.later_nodes:
            self.nodes = self.later_nodes.pop(0)
        self.observations += 1
        return RegionObservation(
            region=REGION,
            at=0.0,
            pools=[
                PoolObservation(
                    name="general", min=1, desired=self.desired, max=5, current=len(self.nodes)
                )
            ],
            nodes=list(self.nodes),
        )

    def activities(self) -> tuple[list[Any], list[Any]]:
        world = self

        @activity.defn(name="observe_region_nodes")
        async def observe(inp: ObserveRegionInput) -> ObserveRegionResult:
            return ObserveRegionResult(observation=world.observation(), pending_pods=world.pending)

        @activity.defn(name="decide_scaling")
        async def decide_scaling(inp: DecideScalingInput) -> DecideScalingResult:
            observation = inp.observed.observation.model_copy(update={"at": inp.at.timestamp()})
            result = decide(
                PolicyInput(
                    observation=observation,
                    demand=PendingDemand(pending_pods=inp.observed.pending_pods),
                    mode=world.mode,
                    state=inp.state,
                    settings=SETTINGS,
                )
            )
            world.decisions.extend(result.decisions)
            return DecideScalingResult(
                mode=world.mode,
                water_level=result.water_level,
                decisions=result.decisions,
                state=result.state,
                tick_seconds=SETTINGS.tick_seconds,
            )

        @activity.defn(name="cordon_node")
        async def cordon(inp: NodeActionInput) -> NodeActionResult:
            world.actions.append(("cordon", inp.node))
            return NodeActionResult(node=inp.node, changed=True)

        @activity.defn(name="uncordon_node")
        async def uncordon(inp: NodeActionInput) -> NodeActionResult:
            world.actions.append(("uncordon", inp.node))
            return NodeActionResult(node=inp.node, changed=True)

        @activity.defn(name="drain_node")
        async def drain(inp: DrainNodeInput) -> DrainNodeResult:
            world.actions.append(("drain", inp.node))
            return DrainNodeResult(node=inp.node)

        @activity.defn(name="scale_pool")
        async def scale(inp: ScalePoolInput) -> PoolActionResult:
            if world.fail_scale:
                raise ApplicationError("quota exceeded", type="NodePoolError", non_retryable=True)
            world.actions.append(("scale", inp.desired))
            before, world.desired = world.desired, inp.desired
            # New nodes come up at once (half full, so a 6-CPU pod still fits none).
            while len(world.nodes) < inp.desired:
                world.nodes.append(node(f"n{len(world.nodes)}", 0.5))
            return PoolActionResult(pool=inp.pool, desired_before=before, desired_after=inp.desired)

        @activity.defn(name="remove_nodes")
        async def remove(inp: RemoveNodesInput) -> PoolActionResult:
            world.actions.append(("remove", sorted(inp.nodes)))
            world.nodes = [n for n in world.nodes if n.name not in inp.nodes]
            before, world.desired = world.desired, world.desired - len(inp.nodes)
            return PoolActionResult(
                pool=inp.pool, desired_before=before, desired_after=world.desired, removed=inp.nodes
            )

        @activity.defn(name="move_tasks")
        async def move(inp: MoveTasksInput) -> MoveTasksResult:
            world.actions.append(("move", (sorted(inp.task_ids), inp.reason)))
            return MoveTasksResult(signalled=len(inp.task_ids))

        @activity.defn(name="record_scaling_outcome")
        async def record_outcome(inp: RecordOutcomeInput) -> RecordOutcomeResult:
            world.failures.append(inp)
            return RecordOutcomeResult(recorded=True)

        central = [decide_scaling, move, record_outcome]
        unit = [observe, cordon, uncordon, drain, scale, remove]
        return central, unit


def workers(client: Client, world: FakeRegion, queue: str) -> list[Worker]:
    central, unit = world.activities()
    return [
        Worker(client, task_queue=queue, workflows=[RegionControlWorkflow], activities=central),
        Worker(client, task_queue=region_task_queue(REGION), activities=unit),
    ]
