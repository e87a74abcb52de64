"""RegionMonitorWorkflow: one singleton that watches every region's health.

Each tick it probes every region through its unit worker's task queue (a probe that no
worker picks up means the worker stopped polling; one that fails means the region's API
is unreachable), records load and health, and tells the tasks of a region that stayed
bad past the grace period to move. Continues as new to keep its history short.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

from workflows import options

with workflow.unsafe.imports_passed_through():
    from activities.jobs import JobActivities
    from activities.regions import RegionActivities
    from meridian.regions.contracts import (
        REGION_MONITOR_WORKFLOW,
        SIGNAL_REGION_SUSPECT,
        AssessRegionsInput,
        ProbeOutcome,
        RegionMonitorInput,
        RegionProbeInput,
        RegionSuspect,
        SignalRegionTasksInput,
        TriggerSweepInput,
    )
    from meridian.regions.models import RegionHealth
    from meridian.sweeps.contracts import JOB_SWEEP_SCHEDULE_ID


@workflow.defn(name=REGION_MONITOR_WORKFLOW)
class RegionMonitorWorkflow:
    def __init__(self) -> None:
        self.states: dict[str, RegionHealth] = {}
        # Regions a unit worker reported failing since the last probe round.
        self.suspects: dict[str, str] = {}

    @workflow.run
    async def run(self, inp: RegionMonitorInput) -> None:
        for _ in range(inp.iterations_before_rollover):
            started = workflow.now()
            self.suspects.clear()  # this round probes them; later reports wake the next
            probes = await asyncio.gather(*(self._probe(r, inp) for r in inp.regions))
            assessed = await workflow.execute_local_activity_method(
                RegionActivities.assess_regions,
                # The probes' start time: a region's bad spell is measured from when it
                # was seen bad, not from when the slowest probe came back.
                AssessRegionsInput(probes=list(probes), at=started),
                **options.local(each=30),
            )
            self.states = assessed.states
            for change in assessed.newly_down:
                workflow.logger.warning("region %s down: %s", change.region, change.reason)
                await workflow.execute_local_activity_method(
                    RegionActivities.signal_region_tasks,
                    SignalRegionTasksInput(region=change.region, reason=change.reason),
                    **options.local(each=60),
                )
            if assessed.recovered:
                # A region is back: its fenced-off Jobs of stale attempts go now, not at
                # the job sweep's next turn.
                await workflow.execute_local_activity_method(
                    RegionActivities.trigger_job_sweep,
                    TriggerSweepInput(
                        schedule_id=JOB_SWEEP_SCHEDULE_ID,
                        reason="recovered: " + ", ".join(c.region for c in assessed.recovered),
                    ),
                    **options.local(each=30),
                )
            # Fixed rate, and on time for the next grace deadline.
            elapsed = (workflow.now() - started).total_seconds()
            wait = max(0.0, inp.interval_seconds - elapsed)
            if assessed.next_deadline_seconds is not None:
                wait = min(wait, max(0.1, assessed.next_deadline_seconds))
            if wait > 0 and not self.suspects:
                # A suspect region cuts the wait short: its bad spell (and so the grace
                # period) starts when its API was first seen failing, not a tick later.
                try:
                    await workflow.wait_condition(
                        lambda: bool(self.suspects), timeout=timedelta(seconds=wait)
                    )
                except TimeoutError:
                    pass
        workflow.continue_as_new(inp)

    async def _probe(self, region: str, inp: RegionMonitorInput) -> ProbeOutcome:
        try:
            result = await workflow.execute_activity_method(
                JobActivities.probe_region,
                RegionProbeInput(region=region),
                # Two clocks: not taken up in time means the unit worker is not polling;
                # taken up, the probe bounds its API calls to answer within the second.
                **options.health(
                    region,
                    start_within=inp.probe_timeout_seconds,
                    finish_within=inp.probe_api_timeout_seconds,
                ),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.START_TO_CLOSE:
                # A worker took the probe: it polls; what hung was the call to the region.
                return ProbeOutcome(
                    region=region,
                    reachable=False,
                    worker_answered=True,
                    error=f"probe did not finish within {inp.probe_api_timeout_seconds:.0f}s",
                )
            return ProbeOutcome(
                region=region,
                reachable=False,
                worker_answered=False,
                error=f"unit worker did not answer: {cause or err}"[:300],
            )
        return ProbeOutcome(
            region=region,
            reachable=result.reachable,
            worker_answered=True,
            error=result.error,
            api_error_rate=result.api_error_rate,
            api_latency_ms=result.api_latency_ms,
            snapshot=result.snapshot,
        )

    @workflow.signal(name=SIGNAL_REGION_SUSPECT)
    def region_suspect(self, suspect: RegionSuspect) -> None:
        if self.states.get(suspect.region) != RegionHealth.DOWN:
            self.suspects[suspect.region] = suspect.reason

    @workflow.query(name="states")
    def current_states(self) -> dict[str, RegionHealth]:
        return self.states
