"""Central side of the sweeps: what the database expects, and the verdict on each Job."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from meridian.channels.signals import signal_tasks
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.observability import record as measure
from meridian.settings import Settings
from meridian.store import Store
from meridian.sweeps.contracts import (
    ExpectedJob,
    MarkOrphansDeletedInput,
    ReconcileJobsInput,
    ReconcileJobsResult,
    RecordSweepInput,
    RegionTasksInput,
    RegionTasksResult,
    ResumeUnstartedInput,
    ResumeUnstartedResult,
)
from meridian.tasks.contracts import SIGNAL_JOB_STATUS
from meridian.tasks.service import TemporalUnavailable, start_task_workflow
from meridian.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

# Failures named in a sweep run's error (all are counted, and noted on their tasks).
_ERRORS_SHOWN = 5


class SweepActivities:
    def __init__(self, store: Store, client: Client | None, settings: Settings):
        self.store = store
        self.client = client
        self.settings = settings

    @activity.defn(name="active_tasks_for_region")
    def active_tasks_for_region(self, inp: RegionTasksInput) -> RegionTasksResult:
        tasks: list[ExpectedJob] = []
        after: str | None = None
        with self.store.counting() as queries:
            while True:
                page = self.store.list_active_tasks(region=inp.region, after_id=after, limit=2000)
                tasks.extend(
                    ExpectedJob(
                        task_id=r.id, attempt=r.attempt, status=r.status, job_name=r.job_name
                    )
                    for r in page
                )
                if len(page) < 2000:
                    break
                after = page[-1].id
        return RegionTasksResult(region=inp.region, tasks=tasks, db_queries=queries.value)

    @activity.defn(name="resume_unstarted_tasks")
    async def resume_unstarted_tasks(self, inp: ResumeUnstartedInput) -> ResumeUnstartedResult:
        """Start the workflow of every task recorded SCHEDULING but never placed, once it
        is older than a submit takes: the API may have died between writing the row and
        starting the workflow. Starting is idempotent, so a running workflow is untouched.

        Every such task, page after page: one stuck near the start of the table must not
        hide the ones behind it. A workflow that cannot be started is noted on its task
        and counted, never dropped in silence."""
        result = ResumeUnstartedResult()
        if self.client is None:
            return result
        created_before = inp.at - timedelta(seconds=inp.older_than_seconds)
        after: str | None = None
        with self.store.counting() as queries:
            while True:
                page = await asyncio.to_thread(
                    self.store.list_unstarted_tasks,
                    created_before=created_before,
                    after_id=after,
                    limit=inp.limit,
                )
                for task in page:
                    await self._resume(self.client, task.id, task.spec, inp.at, result)
                if len(page) < inp.limit:
                    break
                after = page[-1].id
        result.db_queries = queries.value
        return result

    async def _resume(
        self,
        client: Client,
        task_id: str,
        spec: TaskSpec,
        at: datetime,
        result: ResumeUnstartedResult,
    ) -> None:
        result.checked += 1
        try:
            if await start_task_workflow(client, self.settings, task_id, spec):
                result.started += 1
                return
            why = "a workflow with this id already ran and closed"
        except TemporalUnavailable as exc:
            why = f"Temporal did not answer: {exc}"[:300]
        log.warning("cannot start the workflow of %s: %s", task_id, why)
        measure.resume_failed()
        result.failed += 1
        if len(result.errors) < _ERRORS_SHOWN:
            result.errors.append(f"{task_id}: {why}")
        # Keyed by the reason: the same failure on every sweep is one event, not one per run.
        digest = hashlib.sha256(why.encode()).hexdigest()[:16]
        await asyncio.to_thread(
            self.store.add_task_note,
            task_id,
            key=f"resume-failed:{digest}",
            reason=f"resume sweep could not start the task's workflow: {why}",
            at=at,
        )

    @activity.defn(name="reconcile_jobs")
    async def reconcile_jobs(self, inp: ReconcileJobsInput) -> ReconcileJobsResult:
        ids = sorted({job.task_id for job in inp.jobs})
        with self.store.counting() as queries:
            tasks = await asyncio.to_thread(self.store.get_task_states, ids)
        result = ReconcileJobsResult(region=inp.region, db_queries=queries.value)
        found: Counter[str] = Counter()
        to_signal = []
        for job in inp.jobs:
            task = tasks.get(job.task_id)
            if task is None:
                found["unknown"] += 1
                result.delete.append(job.job_name)
                result.report.append(f"{job.job_name}: no such task")
            elif task.status.is_terminal:
                found["finished"] += 1
                result.delete.append(job.job_name)
            elif job.attempt < task.attempt:
                # Fencing: an older attempt's Job must never run beside the current one.
                found["stale"] += 1
                result.delete.append(job.job_name)
                result.report.append(
                    f"{job.job_name}: stale attempt {job.attempt} (task at {task.attempt})"
                )
            elif (
                job.attempt == task.attempt
                and job.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)
                and job.observation is not None
            ):
                found["missed"] += 1
                to_signal.append(job.observation)
        signalled = await self._signal(to_signal)
        result.found = dict(found)
        result.fixed = {"signalled": signalled}
        for line in result.report:
            log.warning("job sweep %s: %s", inp.region, line)
        return result

    async def _signal(self, observations: list[JobObservation]) -> int:
        if self.client is None or not observations:
            return 0
        return await signal_tasks(
            self.client, ((o.task_id, o) for o in observations), SIGNAL_JOB_STATUS
        )

    @activity.defn(name="mark_orphans_deleted")
    def mark_orphans_deleted(self, inp: MarkOrphansDeletedInput) -> int:
        """Returns the statements it sent (the sweep's record counts them)."""
        with self.store.counting() as queries:
            for name in inp.job_names:
                self.store.mark_orphan_deleted(inp.region, name, inp.at)
        return queries.value

    @activity.defn(name="record_sweep")
    def record_sweep(self, inp: RecordSweepInput) -> None:
        found: Counter[str] = Counter()
        fixed: Counter[str] = Counter()
        requests = 0
        errors = []
        for region in inp.regions:
            found.update(region.found)
            fixed.update(region.fixed)
            requests += region.requests
            if region.error:
                errors.append(f"{region.region}: {region.error}")
        found["jobs_seen"] = sum(r.jobs_seen for r in inp.regions)
        if inp.resumed:
            fixed["workflows_started"] += inp.resumed
        if inp.resume_failed:
            found["resume_failed"] += inp.resume_failed
            errors.append(
                f"{inp.resume_failed} task workflow(s) could not be started: "
                + "; ".join(inp.resume_errors)
            )
        # What the sweep's central activities sent (this bookkeeping write not included).
        queries = inp.db_queries + sum(r.db_queries for r in inp.regions)
        self.store.record_sweep_run(
            kind=inp.kind,
            started_at=inp.started_at,
            finished_at=inp.finished_at,
            found=dict(found),
            fixed=dict(fixed),
            k8s_requests=requests,
            db_queries=queries,
            error="; ".join(errors) or None,
        )
        measure.sweep(inp, found, fixed)
