"""RegionControlWorkflow logic on the time-skipping server: decisions carried out in
`auto`, nothing in `advise`, failures recorded, memory kept across continue-as-new."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from meridian.scaling import Request, ScalingMode
from meridian.scaling.contracts import REGION_CONTROL_WORKFLOW, RegionControlInput
from tests.workflows.region_control_fakes import REGION, FakeRegion, node, workers


async def _run(
    env: WorkflowEnvironment, world: FakeRegion, until: Callable[[], bool], ticks: int = 50
) -> WorkflowHandle[object, object]:
    queue = f"rc-{uuid.uuid4().hex[:8]}"
    client: Client = env.client
    async with AsyncExitStack() as stack:
        for worker in workers(client, world, queue):
            await stack.enter_async_context(worker)
        handle = await client.start_workflow(
            REGION_CONTROL_WORKFLOW,
            RegionControlInput(region=REGION, ticks_before_rollover=ticks, tick_seconds=10),
            id=f"rc-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        for _ in range(200):
            if until():
                break
            # Time skips only while the client waits on the server: skip a tick's worth.
            await env.sleep(5)
            await asyncio.sleep(0.02)
        await handle.terminate("test over")
    return handle


async def test_auto_grows_for_pending_demand(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeRegion(
        pending=[Request(id="p1", cpu=6000, mem=1), Request(id="p2", cpu=6000, mem=1)]
    )
    await _run(time_skipping_env, world, lambda: ("scale", 4) in world.actions)
    assert ("scale", 4) in world.actions


async def test_not_ready_node_is_cordoned_drained_and_tasks_moved(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    sick = node("n0", 0.3, ready=False, tasks=["t1", "t2"])
    healthy = sick.model_copy(update={"ready": True})
    # Seen Ready on the first tick (the policy leaves booting nodes alone), NotReady after.
    world = FakeRegion(nodes=[healthy, node("n1", 0.5)], later_nodes=[[sick, node("n1", 0.5)]])
    await _run(time_skipping_env, world, lambda: any(a[0] == "drain" for a in world.actions))
    assert world.observations >= 2
    kinds = [a[0] for a in world.actions]
    assert kinds[:3] == ["cordon", "cordon", "move"] and "drain" in kinds
    moved = next(a[1] for a in world.actions if a[0] == "move")
    assert moved[0] == ["t1", "t2"] and moved[1].startswith("node-unhealthy: ")


async def test_advise_carries_out_nothing(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeRegion(pending=[Request(id="p1", cpu=6000, mem=1)], mode=ScalingMode.ADVISE)
    await _run(time_skipping_env, world, lambda: len(world.decisions) >= 3)
    assert world.actions == []
    assert any(d.kind == "scale_up" and d.mode == "advise" for d in world.decisions)


async def test_failed_action_is_recorded_not_fatal(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeRegion(pending=[Request(id="p1", cpu=6000, mem=1)], fail_scale=True)
    await _run(time_skipping_env, world, lambda: bool(world.failures))
    assert "quota exceeded" in world.failures[0].error


async def test_state_survives_continue_as_new(time_skipping_env: WorkflowEnvironment) -> None:
    # One tick per run: the cooldown started by the first growth must still hold in the
    # next runs, or the flapping guard would be lost at every rollover.
    world = FakeRegion(pending=[Request(id="p1", cpu=6000, mem=1)])
    await _run(time_skipping_env, world, lambda: len(world.decisions) >= 4, ticks=1)
    scales = [a for a in world.actions if a[0] == "scale"]
    assert len(scales) == 1
