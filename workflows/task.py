"""TaskWorkflow: one durable workflow per task (workflow id = task id).

place → create the attempt's Job on the region's queue → follow its status (signals from
the watch, the resident channel and the sweeps; a timer-driven read as the backstop) →
record every transition. Application failures follow the task's retry policy;
infrastructure failures exclude the region and start a new, fenced attempt elsewhere.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from workflows import options

with workflow.unsafe.imports_passed_through():
    from activities.jobs import JobActivities
    from activities.tasks import TaskActivities
    from meridian.kube.contracts import (
        NAMESPACE_NOT_READY,
        CreateJobInput,
        CreateJobResult,
        EnsureNamespaceInput,
        JobObservation,
        JobPhase,
        JobRef,
    )
    from meridian.regions.contracts import RegionHealthInput
    from meridian.tasks.contracts import (
        QUERY_STATE,
        SA_BUSINESS_UNIT,
        SA_KIND,
        SA_REGION,
        SA_STATUS,
        SIGNAL_INFRA_FAILURE,
        SIGNAL_JOB_STATUS,
        SIGNAL_RESIDENT_STATUS,
        SIGNAL_STOP,
        TASK_WORKFLOW,
        UPDATE_MODIFY,
        InfraFailure,
        ModifyInput,
        ModifyResult,
        PlaceTaskInput,
        PlaceTaskResult,
        RecordOrphanInput,
        RecordStatusInput,
        ResidentStatus,
        StopRequest,
        TaskProgress,
        TaskWorkflowInput,
        TaskWorkflowResult,
        UpdateSpecInput,
    )
    from meridian.tasks.lifecycle import (
        AttemptEnd,
        Outcome,
        after_app_failure,
        infra_failure_end,
        is_final_failure,
        judge_observation,
        under_failover,
    )
    from meridian.tasks.spec import TaskSpec, TaskStatus, job_name_for
    from meridian.tasks.timing import WorkflowTiming

SA_KEYS = {
    SA_STATUS: SearchAttributeKey.for_keyword(SA_STATUS),
    SA_REGION: SearchAttributeKey.for_keyword(SA_REGION),
    SA_BUSINESS_UNIT: SearchAttributeKey.for_keyword(SA_BUSINESS_UNIT),
    SA_KIND: SearchAttributeKey.for_keyword(SA_KIND),
}

# Workflow patches (workflow.patched): histories recorded before a change keep replaying
# the old commands. Remove a patch only once no workflow that started before it runs.
PATCH_ORPHAN_WITH_RECORD = "orphan-with-record"  # one local activity, not two, per move
# The unit's namespace is prepared by an activity of its own before the create.
PATCH_ENSURE_NAMESPACE = "ensure-namespace-first"
# The create goes first, asking the unit worker to create only in a namespace it has
# prepared already; the namespace step runs only when it has not (the first task of a
# unit in a region, per unit worker process).
PATCH_CREATE_IN_READY_NAMESPACE = "create-in-ready-namespace"
# A Job that may live in a region that is not down (a create that timed out, a delete
# that failed) is deleted before the task moves, retried until it is gone or the region
# is down; before, it was only fenced as an orphan, and until the job sweep came it ran
# beside the new attempt's Job (one duplicate in 996 moves at 10,000 live tasks). It is
# still fenced: a create request in flight may land after the delete.
PATCH_GONE_BEFORE_MOVE = "gone-before-move"
# A create that failed without an answer is sent again to its region while the region is
# not down (`_send_create`), rather than deleted and moved at once: a delete that lands
# before the late create left that Job running beside the next region's (3 in 1,000
# moves at 10,000 live tasks, each fenced but live until the job sweep came).
PATCH_CREATE_AGAIN_IN_PLACE = "create-again-in-place"
# A live Job of an earlier attempt that a channel reports (a create that landed after
# the task had moved on) is deleted by the task at once, not left to the hourly job
# sweep: the watch reports it as soon as its pod runs.
PATCH_DELETE_LIVE_STALE = "delete-live-stale"
# A stop ends the delete retries of a Job in a region that is up but does not answer
# (`_make_sure_gone`): the Job is fenced and the job sweep deletes it, and as nothing is
# created after a stop there is no second copy to wait for. Before, the stop waited
# until the delete went through or the region was down.
PATCH_STOP_ENDS_DELETE_RETRIES = "stop-ends-delete-retries"

# DB writes and placement run as local activities (`options.local`) on the central worker
# that runs this workflow: no task-queue round trip, which is most of a task's cost on the
# server. Job calls run on the region's unit worker (`options.region`).


@workflow.defn(name=TASK_WORKFLOW)
class TaskWorkflow:
    @workflow.init
    def __init__(self, inp: TaskWorkflowInput) -> None:
        # From the input here, not in `run`: an update that arrives with the first
        # workflow task runs before `run` does, and must see the task it modifies.
        self.task_id = inp.task_id
        self.spec: TaskSpec = inp.spec
        self.p = inp.progress or TaskProgress()
        self.timing = inp.timing or WorkflowTiming()
        # One modify at a time: each merges into the spec the one before it left.
        self._modify_lock = asyncio.Lock()
        self._observations: list[JobObservation] = []
        self._infra: list[InfraFailure] = []
        self._stop: StopRequest | None = None
        self._replace_job = False
        self._terminal = False
        self._sa_enabled = False
        self._sa_status: TaskStatus | None = TaskStatus.SCHEDULING  # what the starter set
        self._mark_running: JobObservation | None = None
        self._waiting_for_region = False
        self._confirm_missing = False
        # (region, Job name, namespace) of a create under way; namespace None: the unit
        # worker names it (a history from before the namespace step).
        self._creating: tuple[str, str, str | None] | None = None
        self._notes: list[str] = []
        # Live Jobs of earlier attempts a channel reported, to delete (`_delete_stale`).
        self._stale_live: list[JobObservation] = []
        self._stale_handled: set[str] = set()
        self._backstop_generation = 0
        self._backstop_due = False
        # The last backstop read found the Job running: the run may roll over once the
        # news that came with it is handled (`_roll_over_if_settled`).
        self._read_found_running = False
        self._backstop_timer: asyncio.Task[None] | None = None

    # -- run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TaskWorkflowInput) -> TaskWorkflowResult:
        # Search attributes are only upserted when the starter registered them (the API
        # does); the workflow then works on servers without them (unit tests).
        started_with = workflow.info().typed_search_attributes
        self._sa_enabled = started_with.get(SA_KEYS[SA_STATUS]) is not None
        try:
            result = await self._lifecycle()
        except asyncio.CancelledError:
            # `temporal workflow cancel` (or a cancelled REST stop): clean up, record, and
            # let the workflow close as Canceled.
            await self._cleanup_stopped("cancelled")
            raise
        except ApplicationError:
            # The task failed for good (and is recorded so): an accepted modify still
            # gets its answer first.
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        # A modify accepted meanwhile gets its answer (and its write) before the close.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _lifecycle(self) -> TaskWorkflowResult:
        while True:
            if self._stop is not None:
                return await self._finish_stopped(self._stop.reason)
            if self.p.job_name is None:
                placed = await self._place()
                if placed is None:
                    return await self._finish_stopped(
                        self._stop.reason if self._stop else "stopped"
                    )
                await self._start_attempt(placed)
                if self.p.job_name is None:
                    continue  # the create failed for the infrastructure; re-place
            end = await self._follow()
            if end.outcome is Outcome.SUCCEEDED:
                return await self._finish(TaskStatus.SUCCEEDED, end.reason, exit_code=0)
            if end.outcome is Outcome.STOP:
                return await self._finish_stopped(end.reason)
            if end.outcome is Outcome.REPLACE:
                await self._retire_attempt(end.reason, exclude=False)
            elif end.outcome is Outcome.INFRA_FAILED:
                await self._retire_attempt(
                    end.reason, exclude=end.exclude_region, region_down=end.region_down
                )
            elif end.outcome is Outcome.APP_FAILED:
                self.p.app_failures += 1
                # The retry policy as it is now: a modify may have changed it mid-attempt.
                verdict = after_app_failure(
                    end, self.spec.retry, attempt=self.p.attempt, app_failures=self.p.app_failures
                )
                if verdict.final:
                    await self._retire_attempt(end.reason, exclude=False, quiet=True)
                    return await self._finish(
                        TaskStatus.FAILED,
                        verdict.message,
                        error=end.reason,
                        exit_code=end.exit_code,
                    )
                await self._retire_attempt(end.reason, exclude=False)
                await self._sleep_unless_stopped(verdict.backoff_seconds)
            await self._roll_over_if_due()

    # -- placement and attempts ----------------------------------------------------------

    async def _place(self) -> PlaceTaskResult | None:
        backoff = self.timing.unplaced_backoff_seconds
        last_reason = ""
        while self._stop is None:
            result = await workflow.execute_local_activity_method(
                TaskActivities.place_task,
                PlaceTaskInput(
                    task_id=self.task_id,
                    spec=self.spec,
                    attempt=self.p.attempt + 1,
                    seq=self._next_seq(),
                    excluded_regions=self.p.excluded_regions,
                ),
                **options.local(),
            )
            if result.region is not None:
                return result
            if result.reason != last_reason:
                # "Why still pending" always has an answer in the API.
                await self._record(TaskStatus.SCHEDULING, result.reason, placement=result.summary)
                last_reason = result.reason
            await self._sleep_unless_stopped(backoff)
            backoff = min(backoff * 2, self.timing.unplaced_backoff_max_seconds)
            # Regions excluded for earlier failures get another chance once they recover.
            if (
                len(self.p.excluded_regions) > 0
                and backoff >= self.timing.unplaced_backoff_max_seconds
            ):
                self.p.excluded_regions = {}
            # A task nothing can take may wait for days: its history must not grow for ever.
            await self._roll_over_if_due()
        return None

    async def _start_attempt(self, placed: PlaceTaskResult) -> None:
        region = str(placed.region)
        if workflow.patched(PATCH_CREATE_IN_READY_NAMESPACE):
            before = (self.p.attempt, self.p.region, self.p.last_resource_version)
            resident_state = self.p.resident_state
            if await self._create_attempt(placed, region, None, only_if_ready=True):
                return
            # Refused before any request: no Job, so no attempt was spent. The progress
            # is as it was, and the namespace step below runs as it did before this patch.
            self.p.attempt, self.p.region, self.p.last_resource_version = before
            self.p.resident_state = resident_state
        elif not workflow.patched(PATCH_ENSURE_NAMESPACE):
            await self._create_attempt(placed, region, None)
            return
        namespace = await self._ensure_namespace(region)
        if namespace is None:
            return  # no Job was tried, so no attempt is spent; re-place
        await self._create_attempt(placed, region, namespace)

    async def _create_attempt(
        self,
        placed: PlaceTaskResult,
        region: str,
        namespace: str | None,
        *,
        only_if_ready: bool = False,
    ) -> bool:
        """Start the next attempt in `region`; False only when `only_if_ready` and the
        unit worker had not prepared the namespace (nothing was created)."""
        self.p.attempt += 1
        self.p.region = region
        self.p.last_resource_version = 0
        self.p.resident_state = None
        # A new Job gets its first read after the first period again.
        self.p.backstops_waited = 0
        name = job_name_for(self.task_id, self.p.attempt)
        # Known before the create is sent: a cancel that lands mid-create still finds it.
        self._creating = (region, name, namespace)
        # The Job gets the spec as it is now; only a modify from here on replaces it.
        self._replace_job = False
        create = CreateJobInput(
            task_id=self.task_id,
            spec=self.spec,
            attempt=self.p.attempt,
            region=region,
            namespace=namespace,
            only_if_namespace_ready=only_if_ready,
            burst=placed.burst,
        )
        try:
            created = await self._send_create(create)
        except ActivityError as err:
            if only_if_ready and _cause_type(err) == NAMESPACE_NOT_READY:
                self._creating = None
                return False
            # Invalid or forbidden: the same spec is refused in any region, so moving the
            # task would only repeat the refusal for ever.
            if is_final_failure(_cause_type(err)):
                await self._finish(
                    TaskStatus.FAILED,
                    f"Job rejected: {_cause_message(err)}",
                    error=_cause_message(err),
                )
                raise ApplicationError(f"Job rejected by {region}", non_retryable=True) from err
            reason = f"could not create Job in {region}: {_cause_message(err)}"
            # The create may have landed all the same (a call that ran out of time after
            # its request went out). Unless the region is down, delete it before anything
            # is created elsewhere: never two live copies.
            if workflow.patched(PATCH_GONE_BEFORE_MOVE):
                await self._make_sure_gone(region, name, namespace)
            # Fence it off either way: a request still in flight may land after the
            # delete. When the unit worker named the namespace (a create that went
            # first, or a history from before the namespace step), where is not known:
            # the sweep finds it by its labels.
            await self._record_orphan(region, name, reason, namespace=namespace)
            self._creating = None
            self.p.excluded_regions[region] = reason
            await self._record(TaskStatus.SCHEDULING, reason)
            self.p.job_name = None
            return True
        self._creating = None
        self.p.job_name = created.job_name
        # Results recorded before namespaces existed say "meridian": where those went.
        self.p.namespace = created.namespace
        await self._record(
            TaskStatus.SCHEDULING,
            f"Job {created.job_name} created in {region}"
            + ("" if created.created else " (already existed)"),
            placement=placed.summary,
        )
        return True

    async def _send_create(self, create: CreateJobInput) -> CreateJobResult:
        """The create on the region's unit worker; ActivityError when the task should
        move (or fail, or re-place for the namespace step).

        A create that failed without an answer may have landed all the same: a call that
        ran out of time after its request went out, at a unit worker backed up with a
        failover's creates. While the region is not down it is sent again, by the same
        Job name, which finds that Job or makes it: the task stays where it was placed
        and no late Job is left behind it (`failover.create_resend_seconds`)."""
        region = create.region
        backoff, resent_for = 1.0, 0.0
        unanswered: ActivityError | None = None
        while True:
            if unanswered is not None and self._stop is not None:
                raise unanswered  # stopped while waiting to resend: send nothing more
            try:
                return await workflow.execute_activity_method(
                    JobActivities.create_job,
                    create,
                    # A region whose unit worker stopped polling never starts the
                    # activity: `within` bounds that wait, then the task moves on.
                    **options.region(region, within=self.timing.region_call_seconds, each=15),
                )
            except ActivityError as err:
                cause = _cause_type(err)
                if (
                    cause == NAMESPACE_NOT_READY
                    or is_final_failure(cause)
                    or isinstance(err.cause, CancelledError)
                    or self._stop is not None
                    or resent_for >= self.timing.create_resend_seconds
                    or not workflow.patched(PATCH_CREATE_AGAIN_IN_PLACE)
                    or not await self._region_up(region)
                ):
                    raise
                if resent_for == 0:
                    await self._record(
                        TaskStatus.SCHEDULING,
                        f"could not create Job in {region}: {_cause_message(err)}; "
                        "sending it again",
                    )
                unanswered = err
            await self._sleep_unless_stopped(backoff)
            resent_for += backoff
            backoff = min(backoff * 2, 30.0)

    async def _region_up(self, region: str) -> bool:
        """Not down in the region monitor's view (degraded counts as up)."""
        health = await workflow.execute_local_activity_method(
            TaskActivities.region_health, RegionHealthInput(region=region), **options.local()
        )
        return not health.down

    async def _retire_attempt(
        self, reason: str, *, exclude: bool, quiet: bool = False, region_down: bool = False
    ) -> None:
        """Delete the attempt's Job before any replacement starts: never two live copies.

        When the region is down the Job cannot be reached: it is recorded as orphaned
        (fenced by its attempt number) and the job sweep deletes it once the region is
        back, so the move does not wait for a dead API to time out.
        """
        region, name = self.p.region, self.p.job_name
        if region is None or name is None:
            return
        if exclude:
            self.p.excluded_regions[region] = reason
        namespace = self.p.namespace
        if region_down:
            deleted = False
        elif workflow.patched(PATCH_GONE_BEFORE_MOVE):
            deleted = await self._make_sure_gone(region, name, namespace)
        else:
            deleted = await self._delete_job(region, name, namespace)
        verb = "moving" if exclude else "retrying"
        if not deleted and not quiet and workflow.patched(PATCH_ORPHAN_WITH_RECORD):
            # One local activity for both writes: a region going down moves all its
            # tasks at once, and every round trip per task counts.
            await self._record(
                TaskStatus.SCHEDULING,
                f"{verb}: {reason}",
                orphan=self._orphan_input(region, name, reason, namespace=namespace),
            )
        else:
            if not deleted:
                await self._record_orphan(region, name, reason, namespace=namespace)
            if not quiet:
                await self._record(TaskStatus.SCHEDULING, f"{verb}: {reason}")
        self.p.job_name = None

    async def _ensure_namespace(self, region: str) -> str | None:
        """The task's unit's namespace in `region`, ready for its Job; None if the region
        could not prepare it (then excluded for this placement, as a failed create is).

        Its own budget, not the create's: set-up is two dependent rounds of requests
        (the namespace, then its policies and quota at once) where a create is one, and
        the unit worker does it once per unit and region, answering later calls from
        its cache. A worker that is not polling is still given up on after one region
        call's wait, as for a create."""
        call = self.timing.region_call_seconds
        try:
            ready = await workflow.execute_activity_method(
                JobActivities.ensure_namespace,
                EnsureNamespaceInput(region=region, business_unit=self.spec.business_unit),
                **options.region(region, within=2 * call, start_within=call),
            )
        except ActivityError as err:
            # Even a refusal (forbidden) is the region's (its RBAC, its admission), never
            # the task's: another region may take it.
            reason = f"could not prepare namespace in {region}: {_cause_message(err)}"
            self.p.excluded_regions[region] = reason
            await self._record(TaskStatus.SCHEDULING, reason)
            return None
        return ready.namespace

    async def _delete_job(self, region: str, name: str, namespace: str | None) -> bool:
        """One delete; False when it failed (the caller fences the Job)."""
        try:
            await self._send_delete(region, name, namespace)
            return True
        except ActivityError:
            return False

    async def _send_delete(
        self, region: str, name: str, namespace: str | None, *, attempt: int | None = None
    ) -> None:
        """The attempt's Job (or `attempt`'s) deleted on its region's unit worker;
        ActivityError when not. `namespace` None: not known (a create still under way);
        found by its labels."""
        await workflow.execute_activity_method(
            JobActivities.delete_job,
            JobRef(
                task_id=self.task_id,
                attempt=self.p.attempt if attempt is None else attempt,
                region=region,
                job_name=name,
                namespace=namespace,
            ),
            **options.region(region, within=self.timing.region_call_seconds, each=10),
        )

    async def _make_sure_gone(self, region: str, name: str, namespace: str | None) -> bool:
        """Delete the attempt's Job, again and again while its region is not down: True
        once it is gone (or was never made), False when the region is down or refuses
        for good (then the caller fences it as an orphan for the job sweep).

        A region that is up but slow (its unit worker backed up with a failover's
        creates) must not leave a Job running while the task starts another elsewhere;
        the move waits for it instead. A region seen down cannot be reached anyway: its
        Jobs are fenced by their attempt and deleted once it is back. A stop ends the
        retries too (False): nothing is created after it."""
        stop_ends = workflow.patched(PATCH_STOP_ENDS_DELETE_RETRIES)
        backoff = 1.0
        while True:
            try:
                await self._send_delete(region, name, namespace)
                return True
            except ActivityError as err:
                if is_final_failure(_cause_type(err)):
                    return False
                failure = _cause_message(err)
            if stop_ends and self._stop is not None:
                return False
            if not await self._region_up(region):
                return False
            workflow.logger.info("delete of %s in %s failed (%s); retrying", name, region, failure)
            if stop_ends:
                await self._sleep_unless_stopped(backoff)
            else:
                await workflow.sleep(timedelta(seconds=backoff))
            backoff = min(backoff * 2, 30.0)

    def _orphan_input(
        self, region: str, name: str, reason: str, *, namespace: str | None
    ) -> RecordOrphanInput:
        return RecordOrphanInput(
            task_id=self.task_id,
            region=region,
            job_name=name,
            attempt=self.p.attempt,
            reason=reason,
            at=workflow.now(),
            namespace=namespace,
        )

    async def _record_orphan(
        self, region: str, name: str, reason: str, *, namespace: str | None
    ) -> None:
        await workflow.execute_local_activity_method(
            TaskActivities.record_orphan,
            self._orphan_input(region, name, reason, namespace=namespace),
            **options.local(),
        )

    async def _delete_stale(self, obs: JobObservation) -> None:
        """Delete a live Job of an earlier attempt; the job sweep is the fallback when
        the delete fails (it deletes any Job older than its task's attempt)."""
        try:
            await self._send_delete(obs.region, obs.job_name, obs.namespace, attempt=obs.attempt)
        except ActivityError as err:
            workflow.logger.warning(
                "delete of stale %s in %s failed: %s", obs.job_name, obs.region, err
            )
            return
        await self._record(
            self.p.status,
            f"deleted {obs.job_name} in {obs.region}: a live Job of attempt {obs.attempt}, "
            "which the task had moved on from",
        )

    # -- following the Job ---------------------------------------------------------------

    async def _follow(self) -> AttemptEnd:
        self._waiting_for_region = False
        self._read_found_running = False
        # From 0 for a new attempt (`_create_attempt`); a run that continued as new while
        # following the Job goes on with the period it had grown to.
        self._arm_backstop()
        while True:
            end = await self._under_policy(self._consume_signals())
            if end is not None:
                if self._mark_running is not None and end.outcome in (
                    Outcome.SUCCEEDED,
                    Outcome.APP_FAILED,
                ):
                    # It ran before it ended: keep that in the record, even when both
                    # news arrive together.
                    await self._record_running()
                return end
            if self._stop is not None:
                return AttemptEnd(Outcome.STOP, self._stop.reason)
            if self._replace_job:
                self._replace_job = False
                return AttemptEnd(Outcome.REPLACE, "Job spec modified")
            if self._mark_running is not None:
                await self._record_running()
                continue
            if self._notes:
                notes, self._notes = self._notes, []
                for note in notes:
                    await self._record(self.p.status, note)
                continue
            if self._stale_live:
                stale, self._stale_live = self._stale_live, []
                if workflow.patched(PATCH_DELETE_LIVE_STALE):
                    for obs in stale:
                        await self._delete_stale(obs)
                    continue
            # A resident task can follow its Job for months: roll the history over,
            # carrying the progress (attempt, fencing token, region) forward.
            await self._roll_over_if_due(following=True)
            if self._read_found_running:
                self._read_found_running = False
                await self._roll_over_if_settled()
            if self._backstop_due or self._confirm_missing:
                if self._backstop_due:
                    self.p.backstops_waited += 1
                self._backstop_due = False
                self._confirm_missing = False
                self._arm_backstop()
                end = await self._under_policy(await self._backstop_read())
                if end is not None:
                    return end
                continue
            await workflow.wait_condition(
                lambda: bool(
                    self._observations
                    or self._infra
                    or self._stop
                    or self._replace_job
                    or self._notes
                    or self._backstop_due
                )
            )

    def _arm_backstop(self) -> None:
        """Start the backstop timer for the current wait.

        One timer per backstop period, never re-armed per signal: a stream of signals
        that change nothing (e.g. a sweep's "missing") cannot starve it, and a task that
        ends in time costs one timer event instead of a start/cancel pair per wake-up.
        A superseded timer still fires but is ignored (its generation is stale).

        The period grows 4-fold with each backstop the attempt waits out, up to
        `backstop_max_seconds`: a long-running Job is covered by the sweeps, which read a
        region's Jobs for all its tasks at once, so per-task reads at a fixed period would
        cost O(live tasks) reads per period and nothing else would (10,000 live tasks at
        30 s: 333 reads a second). A short task still gets its first read after
        `backstop_seconds`. Histories from before the maximum existed replay with the
        fixed period (it defaults to `backstop_seconds`).
        """
        self._backstop_generation += 1
        self._backstop_due = False
        generation = self._backstop_generation
        period = self.timing.backstop_period(self.p.backstops_waited)

        async def fire() -> None:
            await workflow.sleep(timedelta(seconds=period))
            if generation == self._backstop_generation:
                self._backstop_due = True

        self._backstop_timer = asyncio.create_task(fire())

    async def _record_running(self) -> None:
        obs, self._mark_running = self._mark_running, None
        if obs is None:
            return
        await self._record(
            TaskStatus.RUNNING,
            f"Job {obs.job_name} running in {obs.region}"
            + (f" on node {obs.node_name}" if obs.node_name else ""),
        )

    async def _under_policy(self, end: AttemptEnd | None) -> AttemptEnd | None:
        """Apply the task's failover policy (as it is now) to how the attempt ended."""
        verdict = under_failover(end, self.spec.failover)
        if verdict.waiting_note is not None and not self._waiting_for_region:
            self._waiting_for_region = True
            await self._record(self.p.status, verdict.waiting_note)
        return verdict.end

    def _consume_signals(self) -> AttemptEnd | None:
        observations, self._observations = self._observations, []
        for obs in observations:
            end = self._apply_observation(obs)
            if end is not None:
                return end
        infra, self._infra = self._infra, []
        for failure in infra:
            end = infra_failure_end(failure, self.p)
            if end is not None:
                return end
        return None

    def _apply_observation(self, obs: JobObservation) -> AttemptEnd | None:
        if (
            obs.attempt < self.p.attempt
            and obs.phase in (JobPhase.PENDING, JobPhase.RUNNING)
            and obs.job_name not in self._stale_handled
        ):
            # Fenced, so never news about the task; but a second live copy to remove.
            self._stale_handled.add(obs.job_name)
            self._stale_live.append(obs)
        judged = judge_observation(
            obs,
            self.p,
            now=workflow.now(),
            unschedulable_seconds=self.timing.unschedulable_seconds,
        )
        self.p.last_resource_version = judged.resource_version
        if judged.confirm_missing:
            # Hearsay from a sweep: confirm with our own read before acting on it.
            self._confirm_missing = True
        if judged.running:
            self._mark_running = obs
        return judged.end

    async def _backstop_read(self) -> AttemptEnd | None:
        region, name = self.p.region, self.p.job_name
        if region is None or name is None:
            return None
        try:
            obs = await workflow.execute_activity_method(
                JobActivities.read_job,
                JobRef(
                    task_id=self.task_id,
                    attempt=self.p.attempt,
                    region=region,
                    job_name=name,
                    namespace=self.p.namespace,
                ),
                **options.region(region, within=self.timing.region_call_seconds, each=10),
            )
        except ActivityError as err:
            health = await workflow.execute_local_activity_method(
                TaskActivities.region_health, RegionHealthInput(region=region), **options.local()
            )
            if health.down:
                return AttemptEnd(
                    Outcome.INFRA_FAILED,
                    f"region {region} down: {health.reason}",
                    region_down=True,
                )
            workflow.logger.info("backstop read failed in %s: %s", region, _cause_message(err))
            return None
        self._read_found_running = (
            obs.phase is JobPhase.RUNNING and obs.attempt == self.p.attempt and obs.job_name == name
        )
        self._observations.append(obs)
        return self._consume_signals()

    # -- recording -----------------------------------------------------------------------

    def _next_seq(self) -> int:
        self.p.seq += 1
        return self.p.seq

    async def _record(
        self,
        status: TaskStatus,
        reason: str,
        *,
        error: str | None = None,
        exit_code: int | None = None,
        placement: dict[str, object] | None = None,
        orphan: RecordOrphanInput | None = None,
    ) -> None:
        self.p.status = status
        await workflow.execute_local_activity_method(
            TaskActivities.record_status,
            RecordStatusInput(
                task_id=self.task_id,
                seq=self._next_seq(),
                status=status,
                attempt=self.p.attempt,
                region=self.p.region,
                job_name=self.p.job_name,
                reason=reason,
                error=error,
                exit_code=exit_code,
                placement_summary=placement,
                at=workflow.now(),
                orphan=orphan,
            ),
            **options.local(),
        )
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        # Only when the status changes (the region rides along): every upsert is a
        # history event and a visibility write, and the UI filters by status.
        if not self._sa_enabled or self.p.status == self._sa_status:
            return
        self._sa_status = self.p.status
        updates = [SA_KEYS[SA_STATUS].value_set(self.p.status.value)]
        if self.p.region:
            updates.append(SA_KEYS[SA_REGION].value_set(self.p.region))
        workflow.upsert_search_attributes(updates)

    async def _finish(
        self,
        status: TaskStatus,
        reason: str,
        *,
        error: str | None = None,
        exit_code: int | None = None,
    ) -> TaskWorkflowResult:
        self._terminal = True
        await self._record(status, reason, error=error, exit_code=exit_code)
        return TaskWorkflowResult(
            task_id=self.task_id,
            status=status,
            attempt=self.p.attempt,
            region=self.p.region,
            error=error,
            exit_code=exit_code,
        )

    async def _finish_stopped(self, reason: str) -> TaskWorkflowResult:
        target: tuple[str, str, str | None] | None = None
        if self.p.region and self.p.job_name:
            target = (self.p.region, self.p.job_name, self.p.namespace)
        elif self._creating is not None:
            # The create's answer has not come back; its namespace is known unless the
            # history predates the namespace step.
            target = self._creating
        if target is not None:
            region, name, namespace = target
            if not await self._delete_job(region, name, namespace):
                await self._record_orphan(region, name, f"stopped: {reason}", namespace=namespace)
        return await self._finish(TaskStatus.STOPPED, reason)

    async def _cleanup_stopped(self, reason: str) -> None:
        if not self._terminal:
            await self._finish_stopped(reason)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await workflow.wait_condition(
                lambda: self._stop is not None, timeout=timedelta(seconds=seconds)
            )
        except TimeoutError:
            pass

    def _continue_as_new_due(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self.timing.history_event_limit
        )

    async def _roll_over_if_due(self, *, following: bool = False) -> None:
        """Continue as new, carrying the spec as modified and the progress, once the
        history is long; never mid-way through a handler, never over unhandled news."""
        if not self._continue_as_new_due():
            return
        await self._roll_over_unless_pending(following=following)

    async def _roll_over_if_settled(self) -> None:
        """Continue as new once the task has settled: RUNNING, its backstop read just found
        the Job running on, and its history is longer than `settled_history_events`.

        At 10,000 live tasks the central worker caches a small part of them, so a task
        that wakes (a signal, its backstop, a region's move) is usually replayed from its
        whole history first; a settled run replays ~10 events instead of 50-90. It rolls
        over only after the read, which stays the safety net, and the new run resumes
        the grown backstop period (`TaskProgress.backstops_waited`)."""
        limit = self.timing.settled_history_events
        if limit is None or self.p.status is not TaskStatus.RUNNING or self._confirm_missing:
            return
        if workflow.info().get_current_history_length() <= limit:
            return
        await self._roll_over_unless_pending(following=True)

    async def _roll_over_unless_pending(self, *, following: bool) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A stop or a Job-changing modify would not survive the roll-over; signals about
        # the followed Job neither. Handle them in this run (it rolls over afterwards).
        if self._stop is not None or self._replace_job:
            return
        if following and (self._observations or self._infra or self._notes):
            return
        self._continue_as_new()

    def _continue_as_new(self) -> NoReturn:
        workflow.continue_as_new(
            TaskWorkflowInput(
                task_id=self.task_id, spec=self.spec, progress=self.p, timing=self.timing
            )
        )

    # -- signals, updates, queries ---------------------------------------------------------

    @workflow.signal(name=SIGNAL_JOB_STATUS)
    def job_status(self, obs: JobObservation) -> None:
        self._observations.append(obs)

    @workflow.signal(name=SIGNAL_INFRA_FAILURE)
    def infra_failure(self, failure: InfraFailure) -> None:
        self._infra.append(failure)

    @workflow.signal(name=SIGNAL_RESIDENT_STATUS)
    def resident_status(self, status: ResidentStatus) -> None:
        if status.attempt != self.p.attempt or self.p.region is None:
            return
        if status.state != self.p.resident_state and status.state in ("suspect", "degraded"):
            # Worth a line in the task's history, though nothing moves for it.
            detail = f": {status.detail}" if status.detail else ""
            self._notes.append(f"resident channel {status.state}{detail}")
        self.p.resident_state = status.state
        if status.state == "failing":
            self._infra.append(
                InfraFailure(
                    region=self.p.region,
                    attempt=status.attempt,
                    reason="resident channel reports failing"
                    + (f": {status.detail}" if status.detail else ""),
                )
            )

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self, request: StopRequest | None = None) -> None:
        if self._stop is None:
            self._stop = request or StopRequest()

    @workflow.update(name=UPDATE_MODIFY)
    async def modify(self, inp: ModifyInput) -> ModifyResult:
        # Read, write, set under one lock: a second modify waits for the first and
        # merges into its result instead of overwriting it.
        async with self._modify_lock:
            spec = self.spec
            try:
                changed_job = inp.patch.changes_job(spec)
                new_spec = inp.patch.apply_to(spec)
            except ValueError as err:
                # Valid when accepted, invalid once merged with a modify that went first.
                raise ApplicationError(str(err), type="InvalidPatch", non_retryable=True) from err
            # Obeyed from acceptance on, also while the write is under way (it retries
            # until it lands): a placement or create that starts meanwhile uses it.
            self.spec = new_spec
            # A Job live or being created has the old spec: replace it.
            replaced = changed_job and (self.p.job_name is not None or self._creating is not None)
            if replaced:
                self._replace_job = True
            await workflow.execute_local_activity_method(
                TaskActivities.update_spec,
                UpdateSpecInput(task_id=self.task_id, spec=new_spec),
                **options.local(),
            )
        return ModifyResult(spec=new_spec, job_replaced=replaced)

    @modify.validator
    def _validate_modify(self, inp: ModifyInput) -> None:
        if self._terminal or self._stop is not None:
            raise ValueError(f"task is {self.p.status.value}; a finished task cannot be modified")
        # Raises ValueError naming the field when the merged spec is invalid.
        inp.patch.apply_to(self.spec)

    @workflow.query(name=QUERY_STATE)
    def state(self) -> TaskProgress:
        return self.p


def _cause_type(err: ActivityError) -> str:
    cause = err.cause
    return cause.type or "" if isinstance(cause, ApplicationError) else type(cause).__name__


def _cause_message(err: BaseException) -> str:
    cause = err.__cause__ or getattr(err, "cause", None) or err
    return str(cause)[:300]
