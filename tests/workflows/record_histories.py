"""Record TaskWorkflow histories for the replay test.

Run deliberately, after a change that is *meant* to alter histories (with a workflow
patch for running workflows):  .venv/bin/python -m tests.workflows.record_histories
Name scenarios to record only those (`... record_histories task_namespace_first`): the
others keep their older histories, which the replay test proves patches still meet.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from meridian.kube.contracts import FailureKind, JobPhase
from meridian.tasks.contracts import SIGNAL_JOB_STATUS, SIGNAL_STOP, StopRequest
from meridian.tasks.spec import TaskKind
from tests.workflows import recording
from tests.workflows.fakes import FakeWorld, obs, region_workers, spec, start, worker_for


async def _created(world: FakeWorld, n: int) -> None:
    for _ in range(400):
        if len(world.created) >= n:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


SETTLED_TIMING: dict[str, Any] = {"backstop_max_seconds": 1800.0, "settled_history_events": 25}


async def _settle(
    env: WorkflowEnvironment, world: FakeWorld, handle: Any, region: str, name: str
) -> None:
    world.read_phase[name] = JobPhase.RUNNING
    await handle.signal(
        SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.RUNNING, resource_version=2)
    )
    await env.sleep(31)
    first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    for _ in range(400):
        if (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError("the settled task did not continue as new")
    recording.save("task_settled_rollover", (await first.fetch_history()).to_json())
    await handle.signal(
        SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=3)
    )
    await handle.result()
    latest = env.client.get_workflow_handle(handle.id)
    recording.save("task_settled_resumed", (await latest.fetch_history()).to_json())


async def _record(env: WorkflowEnvironment) -> None:
    scenarios = {
        "task_success": (spec(), "success"),
        "task_retry_then_move": (spec(), "retry_move"),
        "task_resident_stopped": (spec(kind=TaskKind.RESIDENT), "stop"),
        # The unit's namespace prepared by its own activity before each create.
        "task_namespace_first": (spec(), "retry_move"),
        # The create first, in a namespace the unit worker has prepared: refused in each
        # new region (the namespace step, then the create again), direct on the retry.
        "task_create_in_ready_namespace": (spec(), "retry_move"),
        # Settled: RUNNING, its first backstop read finds the Job running on, and the run
        # continues as new; saved with its second run (`..._resumed`), which the Job's
        # completion ends.
        "task_settled_rollover": (spec(), "settle"),
    }
    wanted = set(sys.argv[1:]) or set(scenarios)
    for name, (task_spec, script) in scenarios.items():
        if name not in wanted:
            continue
        world = FakeWorld()
        queue = f"record-{name}"
        async with worker_for(env.client, world, queue):
            workers = region_workers(env.client, world)
            for w in workers:
                await w.__aenter__()
            try:
                timing = SETTLED_TIMING if script == "settle" else {}
                handle = await start(env.client, queue, task_spec, **timing)
                await _created(world, 1)
                region = world.created[0][0]
                job_name = world.created[0][1]
                if script == "success":
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(handle.id, 1, region, JobPhase.RUNNING, resource_version=2),
                    )
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=3),
                    )
                elif script == "retry_move":
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(
                            handle.id,
                            1,
                            region,
                            JobPhase.FAILED,
                            exit_code=1,
                            failure_kind=FailureKind.APPLICATION,
                            resource_version=3,
                        ),
                    )
                    await _created(world, 2)
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(
                            handle.id,
                            2,
                            region,
                            JobPhase.FAILED,
                            reason="NodeLost",
                            failure_kind=FailureKind.INFRASTRUCTURE,
                            resource_version=5,
                        ),
                    )
                    await _created(world, 3)
                    other = world.created[2][0]
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(handle.id, 3, other, JobPhase.SUCCEEDED, resource_version=2),
                    )
                elif script == "settle":
                    await _settle(env, world, handle, region, job_name)
                else:
                    await handle.signal(
                        SIGNAL_JOB_STATUS,
                        obs(handle.id, 1, region, JobPhase.RUNNING, resource_version=2),
                    )
                    await handle.signal(SIGNAL_STOP, StopRequest(reason="recorded"))
                await handle.result()
                if script != "settle":  # saved its two runs itself
                    history = await handle.fetch_history()
                    recording.save(name, history.to_json())
            finally:
                for w in workers:
                    await w.__aexit__(None, None, None)


if __name__ == "__main__":
    recording.run(_record)
