"""The two compensating sweeps as Temporal Schedules, created idempotently at start-up.

They show up in the Temporal UI and under `temporal schedule list`, where an operator
can pause, trigger or backfill them like any other schedule.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from meridian.regions.config import load_regions
from meridian.settings import Settings
from meridian.sweeps.contracts import (
    JOB_SWEEP_SCHEDULE_ID,
    JOB_SWEEP_WORKFLOW,
    RUNNING_SWEEP_SCHEDULE_ID,
    RUNNING_SWEEP_WORKFLOW,
    SweepInput,
)

log = logging.getLogger(__name__)


def sweep_schedules(settings: Settings) -> list[tuple[str, Schedule]]:
    regions = [
        r.name
        for r in load_regions(settings.regions_file).regions
        if r.role != "central" or r.node_pools
    ]
    sweep_input = SweepInput(
        regions=regions,
        page_size=settings.sweeps.page_size,
        unstarted_after_seconds=settings.sweeps.unstarted_after_seconds,
    )
    result = []
    for schedule_id, workflow_name, every in (
        (
            RUNNING_SWEEP_SCHEDULE_ID,
            RUNNING_SWEEP_WORKFLOW,
            settings.sweeps.running_task_interval_seconds,
        ),
        (JOB_SWEEP_SCHEDULE_ID, JOB_SWEEP_WORKFLOW, settings.sweeps.job_interval_seconds),
    ):
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                workflow_name,
                sweep_input,
                id=f"{schedule_id}-run",
                task_queue=settings.resolved_control_task_queue,
                execution_timeout=timedelta(seconds=max(60.0, every * 4)),
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every))]),
            # A sweep that overruns its interval is not stacked with another one.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        result.append((schedule_id, schedule))
    return result


async def ensure_sweep_schedules(client: Client, settings: Settings) -> None:
    for schedule_id, schedule in sweep_schedules(settings):
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("created schedule %s", schedule_id)
        except ScheduleAlreadyRunningError:
            # Keep whatever an operator paused; bring interval and input up to date.
            def update(inp: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                new.state = inp.description.schedule.state
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(update)
