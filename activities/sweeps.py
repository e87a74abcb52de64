"""Central side of the sweeps: what the database expects, and the verdict on each Job."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

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
from meridian.tasks.spec import TaskSpec, TaskStatus

log = logging.getLogger(__name__)


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
        starting the workflow. Starting is idempotent, so a running workflow is untouched."""
        if self.client is None:
            return ResumeUnstartedResult()
        with self.store.counting() as queries:
            candidates = await asyncio.to_thread(self._unplaced, inp)
        started = 0
        for task_id, spec in candidates:
            try:
                await start_task_workflow(self.client, self.settings, task_id, spec)
                started += 1
            except TemporalUnavailable as exc:
                log.warning("cannot start the workflow of %s: %s", task_id, exc)
                measure.resume_failed()
        return ResumeUnstartedResult(
            checked=len(candidates), started=started, db_queries=queries.value
        )

    def _unplaced(self, inp: ResumeUnstartedInput) -> list[tuple[str, TaskSpec]]:
        refs = [
            r
            for r in self.store.list_active_tasks(limit=5000)
            if r.status is TaskStatus.SCHEDULING and r.region is None and r.attempt == 0
        ]
        found: list[tuple[str, TaskSpec]] = []
        for ref in refs:
            if len(found) >= inp.limit:
                break
            task = self.store.get_task(ref.id)
            if task is None:
                continue
            if (inp.at - task.created_at).total_seconds() >= inp.older_than_seconds:
                found.append((task.id, task.spec))
        return found

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
