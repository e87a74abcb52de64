"""Record RegionMonitorWorkflow, RunningTaskSweepWorkflow and JobSweepWorkflow histories
for the replay test, against same-name fake activities on the time-skipping server:

- region_monitor_down_recover: one region's probe is refused, then goes unanswered (its
  unit worker "stopped polling": the probe times out), then refused again until the region
  is declared down (tasks signalled); it comes back (job sweep triggered). A suspect report
  wakes the monitor early, a second one (the region already down) is ignored, and the run
  continues as new. The first run's history is recorded.
- running_sweep_drift: one region unreachable, one with drift signalled, one with no
  active tasks.
- job_sweep_stale: one region unreachable, one with stale/unknown Jobs deleted and marked,
  one whose delete fails, one with nothing to delete.

Run deliberately, after a change that is *meant* to alter histories (with a workflow
patch for running workflows):  .venv/bin/python -m tests.workflows.record_monitor_sweeps
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from meridian.kube.contracts import (
    DeleteJobsInput,
    DeleteJobsResult,
    JobKey,
    JobPhase,
    ListJobKeysInput,
    ListJobKeysResult,
)
from meridian.queues import region_health_queue, region_task_queue
from meridian.regions.contracts import (
    REGION_MONITOR_WORKFLOW,
    SIGNAL_REGION_SUSPECT,
    AssessRegionsInput,
    AssessRegionsResult,
    RegionMonitorInput,
    RegionProbeInput,
    RegionProbeResult,
    RegionSuspect,
    SignalRegionTasksInput,
    SignalRegionTasksResult,
    TriggerSweepInput,
)
from meridian.regions.models import ProbeSnapshot
from meridian.sweeps.contracts import (
    JOB_SWEEP_WORKFLOW,
    RUNNING_SWEEP_WORKFLOW,
    ExpectedJob,
    MarkOrphansDeletedInput,
    ReconcileJobsInput,
    ReconcileJobsResult,
    RecordSweepInput,
    RegionTasksInput,
    RegionTasksResult,
    ResumeUnstartedInput,
    ResumeUnstartedResult,
    SweepInput,
    SweepRegionResult,
    SweepResult,
    SweepRunningInput,
)
from meridian.tasks.spec import TaskStatus, job_name_for
from tests.workflows import recording
from workers.central import SANDBOX
from workflows.regions import RegionMonitorWorkflow
from workflows.sweeps import JobSweepWorkflow, RunningTaskSweepWorkflow

HEALTHY, SICK = "aws-us-east-1", "azure-eastus"
ROUNDS = 6  # iterations_before_rollover
# What the sick region's probe does in each round (1-based) of the first run.
SICK_SCRIPT = {2: "refused", 3: "silent", 4: "refused"}
DOWN_AFTER = 3  # consecutive bad rounds


def _unavailable(region: str) -> ApplicationError:
    return ApplicationError(f"{region}: connection refused", type="KubeUnavailable")


class FakeFleet:
    """The monitor's activities: a scripted probe and a tiny state machine for assess."""

    def __init__(self) -> None:
        self.rounds = 0  # assess calls so far
        self.bad: dict[str, int] = {}
        self.states: dict[str, str] = {}
        self.calls: list[tuple[str, Any]] = []

    @activity.defn(name="probe_region")
    async def probe_region(self, inp: RegionProbeInput) -> RegionProbeResult:
        mode = SICK_SCRIPT.get(self.rounds + 1) if inp.region == SICK else None
        if mode == "silent":
            # The unit worker took the probe and never answered: it times out.
            await asyncio.sleep(3600)
        if mode == "refused":
            return RegionProbeResult(region=inp.region, reachable=False, error="refused")
        return RegionProbeResult(
            region=inp.region,
            reachable=True,
            snapshot=ProbeSnapshot(nodes_total=3, nodes_ready=3, cpu_requested_millis=250),
        )

    @activity.defn(name="assess_regions")
    async def assess_regions(self, inp: AssessRegionsInput) -> AssessRegionsResult:
        self.rounds += 1
        result = AssessRegionsResult()
        for probe in inp.probes:
            previous = self.states.get(probe.region)
            if probe.reachable:
                self.bad[probe.region] = 0
                state = "up"
            else:
                self.bad[probe.region] = self.bad.get(probe.region, 0) + 1
                state = "down" if self.bad[probe.region] >= DOWN_AFTER else "degraded"
            reason = probe.error or "ok"
            if state == "degraded":
                result.next_deadline_seconds = 5.0
            result.note(probe.region, previous, state, reason)
            self.states[probe.region] = state
        return result

    @activity.defn(name="signal_region_tasks")
    async def signal_region_tasks(self, inp: SignalRegionTasksInput) -> SignalRegionTasksResult:
        self.calls.append(("signal_region_tasks", inp.region))
        return SignalRegionTasksResult(signalled=2)

    @activity.defn(name="trigger_job_sweep")
    async def trigger_job_sweep(self, inp: TriggerSweepInput) -> bool:
        self.calls.append(("trigger_job_sweep", inp.reason))
        return True


# -- sweeps ---------------------------------------------------------------------------------

UNREACHABLE, DRIFT, IDLE = "aws-us-east-1", "azure-eastus", "gcp-us-central1"
STALE, DELETE_FAILS, CLEAN = "azure-eastus", "gcp-us-central1", "oci-us-ashburn-1"


def _expected(task_id: str, attempt: int, status: TaskStatus) -> ExpectedJob:
    return ExpectedJob(
        task_id=task_id, attempt=attempt, status=status, job_name=job_name_for(task_id, attempt)
    )


def _key(task_id: str, attempt: int, phase: JobPhase) -> JobKey:
    return JobKey(
        job_name=job_name_for(task_id, attempt), task_id=task_id, attempt=attempt, phase=phase
    )


class FakeSweeps:
    """Both sweeps' activities, central (local) and per-region."""

    def __init__(self) -> None:
        self.recorded: list[RecordSweepInput] = []
        self.marked: list[MarkOrphansDeletedInput] = []
        self.active = {
            UNREACHABLE: [_expected("t-a1", 1, TaskStatus.RUNNING)],
            DRIFT: [
                _expected("t-d1", 1, TaskStatus.RUNNING),
                _expected("t-d2", 2, TaskStatus.RUNNING),
            ],
        }
        self.jobs = {
            STALE: [
                _key("t-s1", 1, JobPhase.RUNNING),  # stale: the task is at attempt 2
                _key("t-s1", 2, JobPhase.RUNNING),
                _key("t-gone", 1, JobPhase.SUCCEEDED),  # no such task
            ],
            DELETE_FAILS: [_key("t-f1", 1, JobPhase.FAILED)],
            CLEAN: [_key("t-c1", 1, JobPhase.RUNNING)],
        }

    def central(self) -> list[Any]:
        sweeps = self

        @activity.defn(name="resume_unstarted_tasks")
        async def resume_unstarted_tasks(inp: ResumeUnstartedInput) -> ResumeUnstartedResult:
            return ResumeUnstartedResult(checked=2, started=1)

        @activity.defn(name="active_tasks_for_region")
        async def active_tasks_for_region(inp: RegionTasksInput) -> RegionTasksResult:
            return RegionTasksResult(region=inp.region, tasks=sweeps.active.get(inp.region, []))

        @activity.defn(name="reconcile_jobs")
        async def reconcile_jobs(inp: ReconcileJobsInput) -> ReconcileJobsResult:
            result = ReconcileJobsResult(region=inp.region)
            if inp.region == STALE:
                result.delete = [inp.jobs[0].job_name, inp.jobs[2].job_name]
                result.found = {"stale": 1, "unknown": 1}
                result.report = ["stale attempt 1 (task at 2)", "no such task"]
            elif inp.region == DELETE_FAILS:
                result.delete = [inp.jobs[0].job_name]
                result.found = {"finished": 1}
            result.fixed = {"signalled": 0}
            return result

        @activity.defn(name="mark_orphans_deleted")
        async def mark_orphans_deleted(inp: MarkOrphansDeletedInput) -> None:
            sweeps.marked.append(inp)

        @activity.defn(name="record_sweep")
        async def record_sweep(inp: RecordSweepInput) -> None:
            sweeps.recorded.append(inp)

        return [
            resume_unstarted_tasks,
            active_tasks_for_region,
            reconcile_jobs,
            mark_orphans_deleted,
            record_sweep,
        ]

    def unit(self, region: str) -> list[Any]:
        sweeps = self

        @activity.defn(name="sweep_running")
        async def sweep_running(inp: SweepRunningInput) -> SweepRegionResult:
            if region == UNREACHABLE:
                raise _unavailable(region)
            return SweepRegionResult(
                region=region,
                jobs_seen=len(inp.tasks),
                found={"succeeded": 1, "missing": 1},
                fixed={"signalled": 2},
                requests=1,
            )

        @activity.defn(name="list_job_keys")
        async def list_job_keys(inp: ListJobKeysInput) -> ListJobKeysResult:
            if region == UNREACHABLE:
                raise _unavailable(region)
            return ListJobKeysResult(region=region, jobs=sweeps.jobs.get(region, []), requests=1)

        @activity.defn(name="delete_jobs")
        async def delete_jobs(inp: DeleteJobsInput) -> DeleteJobsResult:
            if region == DELETE_FAILS:
                raise _unavailable(region)
            return DeleteJobsResult(region=region, deleted=list(inp.job_names), requests=2)

        return [sweep_running, list_job_keys, delete_jobs]


# -- recording ------------------------------------------------------------------------------


async def _until(env: WorkflowEnvironment, done: Callable[[], Any], step: float = 0) -> None:
    """Let the workflow run (skipping `step` seconds of workflow time each turn) until done."""
    for _ in range(200):
        ok = done()
        if await ok if inspect.isawaitable(ok) else ok:
            return
        if step:
            await env.sleep(step)
        await asyncio.sleep(0.1)
    raise TimeoutError


async def record_monitor(env: WorkflowEnvironment) -> str:
    client: Client = env.client
    fleet = FakeFleet()
    queue = "record-region-monitor"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=queue,
                workflows=[RegionMonitorWorkflow],
                activities=[
                    fleet.assess_regions,
                    fleet.signal_region_tasks,
                    fleet.trigger_job_sweep,
                ],
                workflow_runner=SANDBOX,
            )
        )
        for region in (HEALTHY, SICK):
            await stack.enter_async_context(
                Worker(
                    client, task_queue=region_health_queue(region), activities=[fleet.probe_region]
                )
            )
        handle = await client.start_workflow(
            REGION_MONITOR_WORKFLOW,
            RegionMonitorInput(
                regions=[HEALTHY, SICK],
                interval_seconds=10,
                probe_timeout_seconds=5,
                iterations_before_rollover=ROUNDS,
            ),
            id="record-region-monitor",
            task_queue=queue,
        )
        first_run = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        try:
            await _until(env, lambda: fleet.rounds >= 1)
            # A unit worker saw its API fail: the monitor probes at once, not in 10 s.
            await handle.signal(
                SIGNAL_REGION_SUSPECT, RegionSuspect(region=SICK, reason="watch refused")
            )
            await _until(env, lambda: fleet.rounds >= 2)
            await _until(env, lambda: fleet.rounds >= 4, step=2.5)
            assert fleet.states[SICK] == "down", fleet.states
            # Already down: this report changes nothing.
            await handle.signal(
                SIGNAL_REGION_SUSPECT, RegionSuspect(region=SICK, reason="still refused")
            )

            async def continued() -> bool:
                desc = await first_run.describe()
                return desc.raw_description.workflow_execution_info.status == (
                    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
                )

            await _until(env, continued, step=2.5)
            assert [c[0] for c in fleet.calls] == ["signal_region_tasks", "trigger_job_sweep"], (
                fleet.calls
            )
            history = await first_run.fetch_history()
        finally:
            await handle.terminate("recorded")
    return history.to_json()


async def record_sweep(env: WorkflowEnvironment, workflow: str, regions: list[str]) -> str:
    client: Client = env.client
    sweeps = FakeSweeps()
    queue = f"record-{workflow}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=queue,
                workflows=[RunningTaskSweepWorkflow, JobSweepWorkflow],
                activities=sweeps.central(),
                workflow_runner=SANDBOX,
            )
        )
        for region in regions:
            await stack.enter_async_context(
                Worker(client, task_queue=region_task_queue(region), activities=sweeps.unit(region))
            )
        handle = await client.start_workflow(
            workflow,
            SweepInput(regions=regions, region_timeout_seconds=20),
            id=f"record-{workflow}",
            task_queue=queue,
            result_type=SweepResult,
        )
        result = await handle.result()
        errors = [r.region for r in result.regions if r.error]
        assert errors and len(errors) < len(regions), result
        history = await handle.fetch_history()
    return history.to_json()


async def record_all(env: WorkflowEnvironment) -> None:
    recording.save("region_monitor_down_recover", await record_monitor(env))
    recording.save(
        "running_sweep_drift",
        await record_sweep(env, RUNNING_SWEEP_WORKFLOW, [UNREACHABLE, DRIFT, IDLE]),
    )
    recording.save(
        "job_sweep_stale",
        await record_sweep(env, JOB_SWEEP_WORKFLOW, [UNREACHABLE, STALE, DELETE_FAILS, CLEAN]),
    )


if __name__ == "__main__":
    recording.run(record_all)
