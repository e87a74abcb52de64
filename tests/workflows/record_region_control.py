"""Record a RegionControlWorkflow history for the replay test: growth for pending demand,
a node that goes NotReady (cordon, move its tasks, drain), a failed resize, and the
rollover (continue-as-new) that ends the run.

Run deliberately, after a change that is *meant* to alter histories:
    .venv/bin/python -m tests.workflows.record_region_control
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from temporalio.testing import WorkflowEnvironment

from meridian.scaling import Request
from meridian.scaling.contracts import REGION_CONTROL_WORKFLOW, RegionControlInput
from tests.workflows import recording
from tests.workflows.region_control_fakes import REGION, FakeRegion, node, workers

TICKS = 6


async def record(env: WorkflowEnvironment) -> str:
    world = FakeRegion(pending=[Request(id="p1", cpu=6000, mem=1)])
    sick = node("n1", 0.5, ready=False, tasks=["t1"])
    async with AsyncExitStack() as stack:
        for worker in workers(env.client, world, "record-region-control"):
            await stack.enter_async_context(worker)
        handle = await env.client.start_workflow(
            REGION_CONTROL_WORKFLOW,
            RegionControlInput(region=REGION, ticks_before_rollover=TICKS, tick_seconds=10),
            id="record-region-control",
            task_queue="record-region-control",
        )
        script = {
            2: lambda: world.nodes.__setitem__(1, sick),
            3: lambda: setattr(world, "fail_scale", True),
            4: lambda: world.pending.append(Request(id="p2", cpu=6000, mem=1)),
        }
        for tick in range(TICKS + 1):
            if tick in script:
                script[tick]()
            await env.sleep(10)
            await asyncio.sleep(0.2)
        first_run = env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        history = await first_run.fetch_history()
        await handle.terminate("recorded")
    return history.to_json()


async def record_all(env: WorkflowEnvironment) -> None:
    recording.save("region_control_rollover", await record(env))


if __name__ == "__main__":
    recording.run(record_all)
