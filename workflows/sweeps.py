"""Status channels 3 and 4: the compensating sweeps, run by Temporal Schedules.

RunningTaskSweepWorkflow: for each region, the tasks the database says are active are
compared with that region's Jobs (listed by label selector, paginated) on the region's
unit worker, which signals every workflow whose Job moved on without it noticing.

JobSweepWorkflow: for each region, every managed Job is checked against the database;
Jobs of finished, unknown or stale-attempt tasks are deleted (fencing: a Job left in a
region that came back never runs beside its replacement), missed completions signalled.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meridian.kube.contracts import (
        DeleteJobsInput,
        DeleteJobsResult,
        ListJobKeysInput,
        ListJobKeysResult,
    )
    from meridian.queues import region_task_queue
    from meridian.sweeps.contracts import (
        JOB_SWEEP_WORKFLOW,
        RUNNING_SWEEP_WORKFLOW,
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

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
)
REGION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=2)


def _unreachable(region: str, err: ActivityError) -> SweepRegionResult:
    return SweepRegionResult(region=region, error=f"region unreachable: {err.cause or err}"[:300])


async def _record(
    kind: str,
    started: datetime,
    results: list[SweepRegionResult],
    *,
    resumed: int = 0,
    db_queries: int = 0,
) -> None:
    await workflow.execute_local_activity(
        "record_sweep",
        RecordSweepInput(
            kind=kind,
            started_at=started,
            finished_at=workflow.now(),
            regions=results,
            resumed=resumed,
            db_queries=db_queries,
        ),
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=LOCAL_RETRY,
    )


@workflow.defn(name=RUNNING_SWEEP_WORKFLOW)
class RunningTaskSweepWorkflow:
    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        started = workflow.now()
        # A task row with no workflow behind it would wait forever: start it first.
        resumed: ResumeUnstartedResult = await workflow.execute_local_activity(
            "resume_unstarted_tasks",
            ResumeUnstartedInput(older_than_seconds=inp.unstarted_after_seconds, at=started),
            result_type=ResumeUnstartedResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=LOCAL_RETRY,
        )
        results = list(await asyncio.gather(*(self._region(r, inp) for r in inp.regions)))
        await _record(
            "running-tasks",
            started,
            results,
            resumed=resumed.started,
            db_queries=resumed.db_queries,
        )
        return SweepResult(kind="running-tasks", regions=results)

    async def _region(self, region: str, inp: SweepInput) -> SweepRegionResult:
        expected: RegionTasksResult = await workflow.execute_local_activity(
            "active_tasks_for_region",
            RegionTasksInput(region=region),
            result_type=RegionTasksResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        )
        if not expected.tasks:
            return SweepRegionResult(region=region, db_queries=expected.db_queries)
        try:
            result: SweepRegionResult = await workflow.execute_activity(
                "sweep_running",
                SweepRunningInput(region=region, tasks=expected.tasks, page_size=inp.page_size),
                result_type=SweepRegionResult,
                task_queue=region_task_queue(region),
                schedule_to_close_timeout=timedelta(seconds=inp.region_timeout_seconds),
                retry_policy=REGION_RETRY,
            )
        except ActivityError as err:
            result = _unreachable(region, err)
        result.db_queries += expected.db_queries
        return result


@workflow.defn(name=JOB_SWEEP_WORKFLOW)
class JobSweepWorkflow:
    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        started = workflow.now()
        results = list(await asyncio.gather(*(self._region(r, inp) for r in inp.regions)))
        await _record("jobs", started, results)
        return SweepResult(kind="jobs", regions=results)

    async def _region(self, region: str, inp: SweepInput) -> SweepRegionResult:
        queue = region_task_queue(region)
        timeout = timedelta(seconds=inp.region_timeout_seconds)
        try:
            listed: ListJobKeysResult = await workflow.execute_activity(
                "list_job_keys",
                ListJobKeysInput(region=region, page_size=inp.page_size),
                result_type=ListJobKeysResult,
                task_queue=queue,
                schedule_to_close_timeout=timeout,
                retry_policy=REGION_RETRY,
            )
        except ActivityError as err:
            return _unreachable(region, err)
        verdict: ReconcileJobsResult = await workflow.execute_local_activity(
            "reconcile_jobs",
            ReconcileJobsInput(region=region, jobs=listed.jobs),
            result_type=ReconcileJobsResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=LOCAL_RETRY,
        )
        result = SweepRegionResult(
            region=region,
            jobs_seen=len(listed.jobs),
            found=dict(verdict.found),
            fixed=dict(verdict.fixed),
            requests=listed.requests,
            db_queries=verdict.db_queries,
        )
        if verdict.delete:
            try:
                deleted: DeleteJobsResult = await workflow.execute_activity(
                    "delete_jobs",
                    DeleteJobsInput(region=region, job_names=verdict.delete),
                    result_type=DeleteJobsResult,
                    task_queue=queue,
                    schedule_to_close_timeout=timeout,
                    retry_policy=REGION_RETRY,
                )
            except ActivityError as err:
                result.error = f"delete failed: {err.cause or err}"[:300]
                return result
            result.requests += deleted.requests
            result.fixed["deleted"] = len(deleted.deleted)
            marked = await workflow.execute_local_activity(
                "mark_orphans_deleted",
                MarkOrphansDeletedInput(region=region, job_names=verdict.delete, at=workflow.now()),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LOCAL_RETRY,
            )
            # Histories from before it returned its statement count carry None here.
            result.db_queries += marked if isinstance(marked, int) else 0
        return result
