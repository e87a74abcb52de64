"""TaskWorkflow logic on the time-skipping server, with same-name fake activities."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from meridian.kube.contracts import FailureKind, JobPhase
from meridian.tasks.contracts import (
    QUERY_STATE,
    SIGNAL_INFRA_FAILURE,
    SIGNAL_JOB_STATUS,
    SIGNAL_RESIDENT_STATUS,
    SIGNAL_STOP,
    UPDATE_MODIFY,
    InfraFailure,
    ModifyInput,
    ModifyResult,
    ResidentStatus,
    StopRequest,
    TaskProgress,
    TaskWorkflowResult,
)
from meridian.tasks.spec import (
    FailoverPolicy,
    JobPatch,
    RetryPatch,
    RetryPolicy,
    TaskKind,
    TaskPatch,
    TaskStatus,
    job_name_for,
)
from meridian.tasks.timing import WorkflowTiming
from tests.workflows.fakes import FakeWorld, obs, region_workers, spec, start, worker_for


def said(world: FakeWorld, text: str) -> bool:
    """Whether any status the task recorded gives a reason containing `text`."""
    return any(text in (r.reason or "") for r in world.records)


async def _wait(predicate: Any, env: WorkflowEnvironment, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


class Harness:
    def __init__(self, env: WorkflowEnvironment, world: FakeWorld):
        self.env = env
        self.world = world
        self.queue = f"central-{uuid.uuid4().hex[:8]}"
        self.stack = AsyncExitStack()

    async def __aenter__(self) -> Harness:
        client = self.env.client
        await self.stack.enter_async_context(worker_for(client, self.world, self.queue))
        for worker in region_workers(client, self.world):
            await self.stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def start(self, **kwargs: Any) -> Any:
        timing = kwargs.pop("timing", {})
        return await start(self.env.client, self.queue, spec(**kwargs), **timing)

    async def created(self, n: int) -> None:
        await _wait(lambda: len(self.world.created) >= n, self.env)


async def test_success_records_each_transition(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        region, name = world.created[0]
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.RUNNING, resource_version=5)
        )
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=9)
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED
    assert result.region == "aws-us-east-1"
    assert world.statuses() == ["SCHEDULING", "RUNNING", "SUCCEEDED"]
    assert [r.seq for r in world.records] == sorted({r.seq for r in world.records})


async def test_application_failure_retries_then_fails(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        for attempt in (1, 2):
            await h.created(attempt)
            region, _ = world.created[attempt - 1]
            await handle.signal(
                SIGNAL_JOB_STATUS,
                obs(
                    handle.id,
                    attempt,
                    region,
                    JobPhase.FAILED,
                    exit_code=3,
                    failure_kind=FailureKind.APPLICATION,
                    resource_version=10 + attempt,
                ),
            )
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.FAILED
    assert result.exit_code == 3
    assert result.attempt == 2
    # Same region both times: an exit code is not the region's fault.
    assert [c[0] for c in world.created] == ["aws-us-east-1", "aws-us-east-1"]
    assert len(world.deleted) == 2  # each failed attempt's Job is cleaned up
    assert "exit code 3" in (world.records[-1].error or "")


async def test_node_lost_moves_to_another_region(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(
                handle.id,
                1,
                "aws-us-east-1",
                JobPhase.FAILED,
                reason="NodeLost",
                failure_kind=FailureKind.INFRASTRUCTURE,
                resource_version=4,
            ),
        )
        await h.created(2)
        assert world.created[1][0] == "azure-eastus"
        assert "aws-us-east-1" in world.placements[-1].excluded_regions
        # Before the replacement was created, the old Job was deleted: never two copies.
        assert ("aws-us-east-1", world.created[0][1]) in world.deleted
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=2),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED
    assert result.region == "azure-eastus"
    assert result.attempt == 2


async def test_stale_attempt_observation_is_ignored(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(
                handle.id,
                1,
                "aws-us-east-1",
                JobPhase.FAILED,
                reason="NodeLost",
                failure_kind=FailureKind.INFRASTRUCTURE,
                resource_version=4,
            ),
        )
        await h.created(2)
        # A late success of attempt 1 (fenced off) must not finish the task.
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 1, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=99),
        )
        await asyncio.sleep(0.3)
        assert (await handle.describe()).status is not None
        assert world.statuses()[-1] != "SUCCEEDED"
        await handle.signal(SIGNAL_STOP, StopRequest(reason="test over"))
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED


async def test_stop_signal_deletes_job(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="no longer needed"))
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED
    assert world.deleted == [world.created[0]]
    assert world.records[-1].reason == "no longer needed"


async def test_cancel_deletes_job_and_records_stopped(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert world.deleted == [world.created[0]]
    assert world.statuses()[-1] == "STOPPED"


async def test_backstop_read_finds_completion_without_signals(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        world.read_phase[world.created[0][1]] = JobPhase.SUCCEEDED
        # No signal at all: the timer backstop reads the Job (time skips 30 s).
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED


async def test_backstop_period_grows_while_the_job_runs_on(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"backstop_seconds": 30.0, "backstop_max_seconds": 600.0})
        await h.created(1)
        world.read_phase[world.created[0][1]] = JobPhase.RUNNING
        reads_before = len(world.refs)
        await time_skipping_env.sleep(30 + 120 + 480 + 600 + 5)
        await _wait(lambda: len(world.refs) - reads_before >= 4, time_skipping_env)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="enough"))
        await handle.result()
        timers = [
            event.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
            async for event in handle.fetch_history_events()
            if event.HasField("timer_started_event_attributes")
        ]
    # 30, 120, 480, then the ceiling: 4 reads in 1,235 s where a fixed period makes 41.
    assert timers[:5] == [30, 120, 480, 600, 600], timers


def test_a_workflow_started_without_a_ceiling_keeps_its_fixed_backstop() -> None:
    old = WorkflowTiming(backstop_seconds=30.0)
    assert [old.backstop_period(n) for n in (0, 1, 5, 500)] == [30.0] * 4
    new = WorkflowTiming(backstop_seconds=30.0, backstop_max_seconds=600.0)
    assert [new.backstop_period(n) for n in (0, 1, 2, 3, 500)] == [30, 120, 480, 600, 600]


def test_inputs_from_before_the_settled_roll_over_decode_to_the_old_behaviour() -> None:
    assert WorkflowTiming.model_validate({"backstop_seconds": 30.0}).settled_history_events is None
    assert TaskProgress.model_validate({"attempt": 2, "job_name": "j"}).backstops_waited == 0


async def test_region_down_moves_without_waiting_for_dead_api(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        world.unreachable.add("aws-us-east-1")
        await handle.signal(
            SIGNAL_INFRA_FAILURE,
            InfraFailure(region="aws-us-east-1", reason="region down", region_down=True),
        )
        await h.created(2)
        assert world.created[1][0] == "azure-eastus"
        # The old Job is fenced off as an orphan for the job sweep, not silently left,
        # in the same write as the "moving" transition.
        assert world.orphans == [world.created[0]]
        moving = [r for r in world.records if (r.reason or "").startswith("moving")]
        assert len(moving) == 1 and moving[0].orphan is not None
        assert moving[0].orphan.job_name == world.created[0][1]
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus"


async def test_failover_never_waits_for_its_region(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(failover=FailoverPolicy.NEVER)
        await h.created(1)
        await handle.signal(
            SIGNAL_INFRA_FAILURE,
            InfraFailure(region="aws-us-east-1", reason="region down", region_down=True),
        )
        await _wait(lambda: said(world, "waiting"), time_skipping_env)
        assert len(world.created) == 1
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 1, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=7),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "aws-us-east-1"
    assert len(world.created) == 1


async def test_unit_worker_unreachable_at_create_moves_on(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    # Its API refuses: the monitor has it down (a region that refuses but is not down
    # yet is sent the create again until it is: see
    # `test_a_create_without_answer_is_sent_again_until_the_region_is_down`).
    world.unreachable.add("aws-us-east-1")
    world.down.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0})
        await _wait(lambda: any(c[0] == "azure-eastus" for c in world.created), time_skipping_env)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus"
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.orphans


async def test_a_live_job_of_an_earlier_attempt_is_deleted_when_a_channel_reports_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The task moved on from a region that was down; when that region is back, the
    watch reports the old attempt's Job running there (a create that landed late, or a
    Job the dead API could not delete). The task deletes it at once, once, rather than
    leaving a second live copy for the hourly job sweep."""
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        world.unreachable.add("aws-us-east-1")
        await handle.signal(
            SIGNAL_INFRA_FAILURE,
            InfraFailure(region="aws-us-east-1", reason="region down", region_down=True),
        )
        await h.created(2)
        world.unreachable.discard("aws-us-east-1")
        old = world.created[0][1]
        for version in (8, 9):  # reported twice: deleted once
            await handle.signal(
                SIGNAL_JOB_STATUS,
                obs(
                    handle.id,
                    1,
                    "aws-us-east-1",
                    JobPhase.RUNNING,
                    resource_version=version,
                    namespace="meridian-bu",
                ),
            )
        await _wait(lambda: ("aws-us-east-1", old) in world.deleted, time_skipping_env)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus" and result.attempt == 2
    deletes = [r for r in world.refs if r.job_name == old]
    assert [(r.attempt, r.namespace) for r in deletes] == [(1, "meridian-bu")]
    assert said(world, f"deleted {old}")


async def test_a_create_that_lands_late_is_sent_again_not_moved(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A backed-up unit worker creates the Job after the call has run out of time. The
    region is not down, so the same create is sent again: it finds that Job, and the
    task runs there. Nothing is created elsewhere, nothing is fenced (a delete-and-move
    left three late Jobs beside their moved tasks in 1,000 moves at 10,000 live tasks)."""
    world = FakeWorld()
    world.late_once.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0})
        await _wait(lambda: any(c[0] == "aws-us-east-1" for c in world.created), time_skipping_env)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 1, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "aws-us-east-1"
    assert world.created == [("aws-us-east-1", f"{handle.id}-a1")]
    assert world.most_live == 1
    assert world.orphans == [] and world.deleted == []
    assert said(world, "sending it again")
    assert said(world, "already existed")


async def test_a_create_without_answer_is_sent_again_until_the_region_is_down(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Creates that fail while the region is up are sent again (not moved at once); once
    the monitor has the region down the task fences the attempt and moves."""
    world = FakeWorld()
    world.unreachable.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0})
        await _wait(
            lambda: said(world, "sending it again"),
            time_skipping_env,
        )
        calls = world.create_calls
        await _wait(lambda: world.create_calls > calls, time_skipping_env)  # sent again
        assert world.created == []
        world.down.add("aws-us-east-1")
        await _wait(lambda: any(c[0] == "azure-eastus" for c in world.created), time_skipping_env)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus"
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.orphans
    # The record says so once, not once per resend.
    assert sum("sending it again" in (r.reason or "") for r in world.records) == 1


async def test_a_stop_while_a_create_is_being_sent_again_stops_the_task(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A stop that lands while the task waits to send its create again ends the resends:
    the task stops, its maybe-landed Job is deleted, and nothing is created elsewhere."""
    world = FakeWorld()
    world.late.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0})
        await _wait(
            lambda: said(world, "sending it again"),
            time_skipping_env,
            timeout=20.0,
        )
        await handle.signal(SIGNAL_STOP, StopRequest(reason="no longer needed"))
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED
    assert not any(c[0] == "azure-eastus" for c in world.created)
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.deleted


async def test_a_create_that_keeps_landing_late_is_deleted_before_the_move(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Resends that never get an answer in time run out (`create_resend_seconds`); the
    region is not down, so the task deletes the Job before it creates one elsewhere:
    never two live copies."""
    world = FakeWorld()
    world.late.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0, "create_resend_seconds": 1.0})
        # Two calls of up to 5 s each (the first and one resend), then the delete.
        await _wait(
            lambda: any(c[0] == "azure-eastus" for c in world.created),
            time_skipping_env,
            timeout=30.0,
        )
        assert ("aws-us-east-1", f"{handle.id}-a1") in world.deleted
        assert said(world, "sending it again")
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus"
    assert world.most_live == 1
    # Fenced all the same: a create still in flight could land after the delete.
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.orphans


async def test_a_late_job_in_a_region_that_refuses_is_retried_until_the_region_is_down(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The create ran out of time (and its resends with it) and the delete fails too,
    while the region is still up: the task waits (it must not start a second copy), and
    once the monitor has the region down it fences the Job and moves."""
    world = FakeWorld()
    world.late.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0, "create_resend_seconds": 0.0})
        await _wait(lambda: ("aws-us-east-1", f"{handle.id}-a1") in world.jobs, time_skipping_env)
        world.unreachable.add("aws-us-east-1")  # deletes fail from now on
        deletes = len(world.refs)
        await _wait(lambda: len(world.refs) >= deletes + 3, time_skipping_env)
        assert not any(c[0] == "azure-eastus" for c in world.created)
        world.down.add("aws-us-east-1")
        await _wait(lambda: any(c[0] == "azure-eastus" for c in world.created), time_skipping_env)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "azure-eastus", JobPhase.SUCCEEDED, resource_version=3),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.region == "azure-eastus"
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.orphans


async def test_a_stop_ends_the_delete_retries_in_a_region_that_is_up(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The create ran out of time and the delete keeps failing while the region is up:
    the task waits rather than start a second copy. A stop ends that wait at once (the
    Job fenced for the job sweep), not when the region comes back or goes down."""
    world = FakeWorld()
    world.late.add("aws-us-east-1")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"region_call_seconds": 5.0, "create_resend_seconds": 0.0})
        await _wait(lambda: ("aws-us-east-1", f"{handle.id}-a1") in world.jobs, time_skipping_env)
        world.unreachable.add("aws-us-east-1")  # deletes fail from now on; never down
        deletes = len(world.refs)
        await _wait(lambda: len(world.refs) >= deletes + 2, time_skipping_env)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="no longer needed"))
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED
    assert not any(c[0] == "azure-eastus" for c in world.created)
    assert ("aws-us-east-1", f"{handle.id}-a1") in world.orphans


async def test_modify_replaces_running_job(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        result: ModifyResult = await handle.execute_update(
            UPDATE_MODIFY,
            ModifyInput(patch=TaskPatch(job=JobPatch(image="busybox:2"))),
            result_type=ModifyResult,
        )
        assert result.job_replaced
        assert result.spec.job.image == "busybox:2"
        await h.created(2)
        assert world.deleted == [world.created[0]]
        # Valid on its own, invalid once merged: the validator rejects it, nothing changes.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                UPDATE_MODIFY,
                ModifyInput(patch=TaskPatch(labels={"meridian.io/x": "y"})),
            )
        assert len(world.specs) == 1
        await handle.signal(SIGNAL_STOP, StopRequest())
        await handle.result()
    assert world.specs[-1].job.image == "busybox:2"


async def test_modify_of_finished_task_is_rejected(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(SIGNAL_STOP, StopRequest())
        await handle.result()
        with pytest.raises(Exception):  # noqa: B017 - closed workflow: RPC or update failure
            await handle.execute_update(UPDATE_MODIFY, ModifyInput(patch=TaskPatch(name="renamed")))


async def test_resident_failing_channel_moves_task(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(kind=TaskKind.RESIDENT)
        await h.created(1)
        await handle.signal(SIGNAL_RESIDENT_STATUS, ResidentStatus(attempt=1, state="degraded"))
        await _wait(
            lambda: said(world, "resident channel degraded"),
            time_skipping_env,
        )
        assert len(world.created) == 1  # degraded is recorded, not acted on
        await handle.signal(SIGNAL_RESIDENT_STATUS, ResidentStatus(attempt=1, state="failing"))
        await h.created(2)
        assert world.created[1][0] == "azure-eastus"
        await handle.signal(SIGNAL_STOP, StopRequest())
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED


async def test_node_level_move_keeps_the_region_eligible(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(
            SIGNAL_INFRA_FAILURE,
            InfraFailure(
                region="aws-us-east-1", reason="scale-down: node removed", exclude_region=False
            ),
        )
        await h.created(2)
        # The old Job is gone first; the region was not excluded (its node is cordoned).
        assert world.deleted == [world.created[0]]
        assert "aws-us-east-1" not in world.placements[-1].excluded_regions
        assert world.created[1][0] == "aws-us-east-1"
        await handle.signal(SIGNAL_STOP, StopRequest())
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED


def _failed(handle_id: str, attempt: int, region: str, exit_code: int = 1) -> Any:
    return obs(
        handle_id,
        attempt,
        region,
        JobPhase.FAILED,
        exit_code=exit_code,
        failure_kind=FailureKind.APPLICATION,
        resource_version=10 + attempt,
    )


async def _history_length(handle: WorkflowHandle[Any, Any]) -> int:
    info = (await handle.describe()).raw_description.workflow_execution_info
    return int(info.history_length)


async def _first_run_status(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> Any:
    first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    return (await first.describe()).status


async def test_modified_retry_policy_applies_to_the_running_attempt(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(retry=RetryPolicy(max_attempts=1, backoff_seconds=1))
        await h.created(1)
        await handle.execute_update(
            UPDATE_MODIFY, ModifyInput(patch=TaskPatch(retry=RetryPatch(max_attempts=3)))
        )
        await handle.signal(SIGNAL_JOB_STATUS, _failed(handle.id, 1, "aws-us-east-1"))
        # Three attempts allowed now: the failure is retried, not final.
        await h.created(2)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 2, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=20),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED
    assert result.attempt == 2


async def test_continue_as_new_keeps_an_accepted_modify(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(
            retry=RetryPolicy(max_attempts=2, backoff_seconds=1),
            timing={"history_event_limit": 100, "backstop_seconds": 3600.0},
        )
        await h.created(1)
        await handle.execute_update(
            UPDATE_MODIFY, ModifyInput(patch=TaskPatch(retry=RetryPatch(max_attempts=3)))
        )
        # Grow the history past its limit while the attempt runs (updates do not wake
        # the follow loop), so that the roll-over happens once the attempt has ended.
        n = 0
        while await _history_length(handle) <= 100:
            n += 1
            await handle.execute_update(
                UPDATE_MODIFY, ModifyInput(patch=TaskPatch(labels={"pump": str(n)}))
            )
        await handle.signal(SIGNAL_JOB_STATUS, _failed(handle.id, 1, "aws-us-east-1"))
        await h.created(2)
        assert await _first_run_status(time_skipping_env, handle) == (
            WorkflowExecutionStatus.CONTINUED_AS_NEW
        )
        await handle.signal(SIGNAL_JOB_STATUS, _failed(handle.id, 2, "aws-us-east-1"))
        # The new run still allows three attempts, as modified.
        await h.created(3)
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 3, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=30),
        )
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED
    assert world.specs[-1].labels == {"pump": str(n)}


async def _hold_workflow_task(world: FakeWorld, handle: WorkflowHandle[Any, Any]) -> Any:
    """Hold the workflow in a local activity (recording RUNNING): what reaches it meanwhile
    arrives in one activation once the returned gate opens."""
    gate = world.hold("record_status")
    await handle.signal(
        SIGNAL_JOB_STATUS,
        obs(handle.id, 1, "aws-us-east-1", JobPhase.RUNNING, resource_version=5),
    )
    await _wait(lambda: "record_status" in world.waiting, None)  # type: ignore[arg-type]
    return gate


async def test_concurrent_modifies_both_apply(time_skipping_env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        gate = await _hold_workflow_task(world, handle)
        rename = asyncio.create_task(
            handle.execute_update(
                UPDATE_MODIFY,
                ModifyInput(patch=TaskPatch(name="renamed")),
                result_type=ModifyResult,
            )
        )
        relabel = asyncio.create_task(
            handle.execute_update(
                UPDATE_MODIFY,
                ModifyInput(patch=TaskPatch(labels={"team": "ads"})),
                result_type=ModifyResult,
            )
        )
        await asyncio.sleep(1.0)  # both updates reach the server while the task is held
        gate.set()
        results = await asyncio.gather(rename, relabel)
        await handle.signal(SIGNAL_STOP, StopRequest())
        await handle.result()
    # Neither change is lost: the stored spec and the last answer carry both.
    assert world.specs[-1].name == "renamed"
    assert world.specs[-1].labels == {"team": "ads"}
    last = max(results, key=lambda r: len(r.spec.labels) + (r.spec.name == "renamed"))
    assert last.spec.name == "renamed" and last.spec.labels == {"team": "ads"}


async def test_modify_in_flight_finishes_before_the_task_completes(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        records = await _hold_workflow_task(world, handle)
        spec_write = world.hold("update_spec")
        rename = asyncio.create_task(
            handle.execute_update(
                UPDATE_MODIFY,
                ModifyInput(patch=TaskPatch(name="renamed")),
                result_type=ModifyResult,
            )
        )
        await asyncio.sleep(1.0)  # the update reaches the server while the task is held
        await handle.signal(
            SIGNAL_JOB_STATUS,
            obs(handle.id, 1, "aws-us-east-1", JobPhase.SUCCEEDED, resource_version=9),
        )
        records.set()
        # The task's end is recorded while the modify's write is still under way.
        await _wait(lambda: "SUCCEEDED" in world.statuses(), time_skipping_env)
        spec_write.set()
        modified = await rename
        result: TaskWorkflowResult = await handle.result()
    assert modified.spec.name == "renamed"
    assert world.specs[-1].name == "renamed"
    assert result.status is TaskStatus.SUCCEEDED


async def test_modify_while_the_job_is_being_created_replaces_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    creating = world.hold("create_job")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await _wait(lambda: "create_job" in world.waiting, time_skipping_env)
        result: ModifyResult = await handle.execute_update(
            UPDATE_MODIFY,
            ModifyInput(patch=TaskPatch(job=JobPatch(image="busybox:2"))),
            result_type=ModifyResult,
        )
        creating.set()  # the create sent before the modify lands with the old image
        await h.created(2)
        await handle.signal(SIGNAL_STOP, StopRequest())
        await handle.result()
    assert result.job_replaced
    assert world.images == ["busybox", "busybox:2"]
    assert world.deleted[0] == world.created[0]


async def test_modify_arriving_with_the_first_workflow_task(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    h = Harness(time_skipping_env, world)
    handle = await h.start()  # no worker yet: the start and the update wait together
    rename = asyncio.create_task(
        handle.execute_update(
            UPDATE_MODIFY, ModifyInput(patch=TaskPatch(name="renamed")), result_type=ModifyResult
        )
    )
    await asyncio.sleep(1.0)
    async with h:
        modified = await rename
        await h.created(1)
        await handle.signal(SIGNAL_STOP, StopRequest())
        await handle.result()
    assert modified.spec.name == "renamed"
    assert world.placements[0].spec.name == "renamed"


async def test_admission_refusal_fails_the_task_without_moving_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(forbidden={"aws-us-east-1", "azure-eastus"})
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await _wait(
            lambda: "FAILED" in world.statuses() or len(world.placements) > 1, time_skipping_env
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    # The same spec is refused anywhere: the task fails with the API's message, once.
    assert len(world.placements) == 1
    assert world.statuses()[-1] == "FAILED"
    assert "image not signed" in (world.records[-1].error or "")
    assert "image not signed" in (world.records[-1].reason or "")


async def test_unplaceable_task_continues_as_new_while_it_waits(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld(no_capacity=True)
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(timing={"history_event_limit": 100})
        for _ in range(30):
            if await _first_run_status(time_skipping_env, handle) != (
                WorkflowExecutionStatus.RUNNING
            ):
                break
            await time_skipping_env.sleep(60)
        assert await _first_run_status(time_skipping_env, handle) == (
            WorkflowExecutionStatus.CONTINUED_AS_NEW
        )
        # Capacity appears: the new run places the task and follows it to the end.
        world.no_capacity = False
        world.read_phase[job_name_for(handle.id, 1)] = JobPhase.SUCCEEDED
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.SUCCEEDED
    assert result.attempt == 1


# -- a settled task rolls its history over -------------------------------------------------

SETTLED = {"backstop_seconds": 30.0, "backstop_max_seconds": 1800.0, "settled_history_events": 20}


async def _timers(handle: WorkflowHandle[Any, Any]) -> list[float]:
    return [
        event.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        async for event in handle.fetch_history_events()
        if event.HasField("timer_started_event_attributes")
    ]


async def _running_at_first_backstop(
    h: Harness, env: WorkflowEnvironment, timing: dict[str, Any]
) -> WorkflowHandle[Any, Any]:
    """A task whose Job runs (signalled, rv 5) and reads running: past its first backstop."""
    handle = await h.start(timing=timing)
    await h.created(1)
    region, name = h.world.created[0]
    h.world.read_phase[name] = JobPhase.RUNNING
    await handle.signal(
        SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.RUNNING, resource_version=5)
    )
    await _wait(lambda: "RUNNING" in h.world.statuses(), env)
    await env.sleep(31)
    await _wait(lambda: len(h.world.refs) >= 1, env)
    return handle


async def _settled(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> Any:
    for _ in range(100):
        status = await _first_run_status(env, handle)
        if status != WorkflowExecutionStatus.RUNNING:
            return status
        await asyncio.sleep(0.05)
    return WorkflowExecutionStatus.RUNNING


async def test_a_settled_task_continues_as_new_after_its_backstop_read(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, world = time_skipping_env, FakeWorld()
    async with Harness(env, world) as h:
        handle = await _running_at_first_backstop(h, env, SETTLED)
        assert await _settled(env, handle) == WorkflowExecutionStatus.CONTINUED_AS_NEW
        first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        events = [e async for e in first.fetch_history_events()]
        completed = [
            i
            for i, e in enumerate(events)
            if e.HasField("activity_task_completed_event_attributes")
        ]
        # The read ran (and answered) before the run rolled over: the safety net stays.
        assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        assert completed and completed[-1] < len(events) - 1
        assert len(world.refs) == 1

        latest = env.client.get_workflow_handle(handle.id)
        state = await latest.query(QUERY_STATE, result_type=TaskProgress)
        region, name = world.created[0]
        assert (state.status, state.attempt, state.region, state.job_name) == (
            TaskStatus.RUNNING,
            1,
            region,
            name,
        )
        assert state.namespace == "meridian-ads"
        assert state.last_resource_version == 5
        assert state.backstops_waited == 1
        assert state.seq == max(r.seq for r in world.records)
        # The new run waits out the grown period, not the first one again.
        assert await _timers(latest) == [120]
        # A stale observation is still fenced off by the carried resourceVersion.
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=4)
        )
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=9)
        )
        result: TaskWorkflowResult = await handle.result()
        new_run_events = [e async for e in latest.fetch_history_events()]
    assert (result.status, result.attempt, result.region) == (TaskStatus.SUCCEEDED, 1, region)
    assert world.created == [(region, name)]
    assert world.statuses() == ["SCHEDULING", "RUNNING", "SUCCEEDED"]
    assert [r.seq for r in world.records] == sorted({r.seq for r in world.records})
    # The settled run is short: a wake-up replays this, not the first run's history.
    assert len(new_run_events) < 20, len(new_run_events)


async def test_without_a_settled_threshold_nothing_rolls_over(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, world = time_skipping_env, FakeWorld()
    timing = {**SETTLED, "settled_history_events": None}
    async with Harness(env, world) as h:
        handle = await _running_at_first_backstop(h, env, timing)
        await env.sleep(125)
        await _wait(lambda: len(world.refs) >= 2, env)
        assert await _first_run_status(env, handle) == WorkflowExecutionStatus.RUNNING
        region = world.created[0][0]
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=9)
        )
        result: TaskWorkflowResult = await handle.result()
        assert await _first_run_status(env, handle) == WorkflowExecutionStatus.COMPLETED
        assert (await _timers(handle))[:3] == [30, 120, 480]
    assert result.status is TaskStatus.SUCCEEDED


async def test_a_signal_arriving_as_the_task_settles_is_not_lost(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, world = time_skipping_env, FakeWorld()
    async with Harness(env, world) as h:
        # No RUNNING signal: the backstop read is the first to see the Job run, and the
        # run would roll over right after recording it. Hold that record while the Job's
        # completion arrives.
        handle = await h.start(timing=SETTLED)
        await h.created(1)
        region, name = world.created[0]
        world.read_phase[name] = JobPhase.RUNNING
        # The create's own record ("Job created") first: held, it would keep the workflow
        # task open and the time-skipping server's clock still (the sleep below would
        # time out, and the module's later tests with it).
        await _wait(lambda: world.statuses() == ["SCHEDULING"], env)
        gate = world.hold("record_status")
        await env.sleep(31)
        await _wait(lambda: "record_status" in world.waiting, env)
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 1, region, JobPhase.SUCCEEDED, resource_version=9)
        )
        gate.set()
        result: TaskWorkflowResult = await handle.result()
        # Handled in the run it reached, which completed instead of rolling over.
        assert await _first_run_status(env, handle) == WorkflowExecutionStatus.COMPLETED
    assert result.status is TaskStatus.SUCCEEDED
    assert world.statuses() == ["SCHEDULING", "RUNNING", "SUCCEEDED"]
    assert world.created == [(region, name)]


async def test_a_new_attempt_after_a_settled_roll_over_reads_after_the_first_period(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, world = time_skipping_env, FakeWorld()
    async with Harness(env, world) as h:
        handle = await _running_at_first_backstop(h, env, SETTLED)
        assert await _settled(env, handle) == WorkflowExecutionStatus.CONTINUED_AS_NEW
        region = world.created[0][0]
        await handle.signal(
            SIGNAL_INFRA_FAILURE, InfraFailure(region=region, attempt=1, reason="NodeLost")
        )
        await h.created(2)
        other = world.created[1][0]
        await handle.signal(
            SIGNAL_JOB_STATUS, obs(handle.id, 2, other, JobPhase.SUCCEEDED, resource_version=3)
        )
        result: TaskWorkflowResult = await handle.result()
        timers = await _timers(env.client.get_workflow_handle(handle.id))
    assert (result.attempt, result.region) == (2, other)
    assert other != region
    assert timers == [120, 30]
