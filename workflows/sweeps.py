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
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import options

with workflow.unsafe.imports_passed_through():
    from activities.jobs import JobActivities
    from activities.sweeps import SweepActivities
    from meridian.kube.contracts import DeleteJobsInput, ListJobKeysInput
    from meridian.sweeps.contracts import (
        JOB_SWEEP_WORKFLOW,
        RUNNING_SWEEP_WORKFLOW,
        MarkOrphansDeletedInput,
        ReconcileJobsInput,
        RecordSweepInput,
        RegionTasksInput,
        ResumeUnstartedInput,
        ResumeUnstartedResult,
        SweepInput,
        SweepRegionResult,
        SweepResult,
        SweepRunningInput,
    )

# A sweep runs again on its schedule: one whose database does not answer gives up after
# this long rather than piling up behind the next run.
DB_WITHIN = 120.0


def _unreachable(region: str, err: ActivityError) -> SweepRegionResult:
    return SweepRegionResult(region=region, error=f"region unreachable: {err.cause or err}"[:300])


async def _record(
    kind: str,
    started: datetime,
    results: list[SweepRegionResult],
    *,
    resumed: ResumeUnstartedResult | None = None,
) -> None:
    resumed = resumed or ResumeUnstartedResult()
    await workflow.execute_local_activity_method(
        SweepActivities.record_sweep,
        RecordSweepInput(
            kind=kind,
            started_at=started,
            finished_at=workflow.now(),
            regions=results,
            resumed=resumed.started,
            resume_failed=resumed.failed,
            resume_errors=resumed.errors,
            db_queries=resumed.db_queries,
        ),
        **options.local(within=DB_WITHIN),
    )


@workflow.defn(name=RUNNING_SWEEP_WORKFLOW)
class RunningTaskSweepWorkflow:
    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        started = workflow.now()
        # A task row with no workflow behind it would wait forever: start it first.
        resumed = await workflow.execute_local_activity_method(
            SweepActivities.resume_unstarted_tasks,
            ResumeUnstartedInput(older_than_seconds=inp.unstarted_after_seconds, at=started),
            **options.local(each=60, within=DB_WITHIN),
        )
        results = list(await asyncio.gather(*(self._region(r, inp) for r in inp.regions)))
        await _record("running-tasks", started, results, resumed=resumed)
        return SweepResult(kind="running-tasks", regions=results)

    async def _region(self, region: str, inp: SweepInput) -> SweepRegionResult:
        expected = await workflow.execute_local_activity_method(
            SweepActivities.active_tasks_for_region,
            RegionTasksInput(region=region),
            **options.local(within=DB_WITHIN),
        )
        if not expected.tasks:
            return SweepRegionResult(region=region, db_queries=expected.db_queries)
        try:
            result = await workflow.execute_activity_method(
                JobActivities.sweep_running,
                SweepRunningInput(region=region, tasks=expected.tasks, page_size=inp.page_size),
                **options.region(region, within=inp.region_timeout_seconds),
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
        on_region = options.region(region, within=inp.region_timeout_seconds)
        try:
            listed = await workflow.execute_activity_method(
                JobActivities.list_job_keys,
                ListJobKeysInput(region=region, page_size=inp.page_size),
                **on_region,
            )
        except ActivityError as err:
            return _unreachable(region, err)
        verdict = await workflow.execute_local_activity_method(
            SweepActivities.reconcile_jobs,
            ReconcileJobsInput(region=region, jobs=listed.jobs),
            **options.local(each=60, within=DB_WITHIN),
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
            doomed = set(verdict.delete)
            try:
                deleted = await workflow.execute_activity_method(
                    JobActivities.delete_jobs,
                    DeleteJobsInput(
                        region=region,
                        job_names=verdict.delete,
                        # Each Job is deleted in its own (its unit's) namespace.
                        namespaces={
                            j.job_name: j.namespace for j in listed.jobs if j.job_name in doomed
                        },
                    ),
                    **on_region,
                )
            except ActivityError as err:
                result.error = f"delete failed: {err.cause or err}"[:300]
                return result
            result.requests += deleted.requests
            result.fixed["deleted"] = len(deleted.deleted)
            marked = await workflow.execute_local_activity_method(
                SweepActivities.mark_orphans_deleted,
                MarkOrphansDeletedInput(region=region, job_names=verdict.delete, at=workflow.now()),
                **options.local(within=DB_WITHIN),
            )
            # Histories from before it returned its statement count carry None here.
            result.db_queries += marked if isinstance(marked, int) else 0
        return result
