"""Activities of the central role that TaskWorkflow runs as local activities.

They write the database and decide placement. Every write is idempotent: a retried
activity (same task, same seq) records nothing twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from temporalio import activity

from meridian.observability import record as measure
from meridian.placement.reservations import Reservations
from meridian.placement.task_placement import place_for_task
from meridian.regions.contracts import RegionHealthInput, RegionHealthResult
from meridian.regions.view import RegionView
from meridian.store import Store, Transition
from meridian.tasks.contracts import (
    PlaceTaskInput,
    PlaceTaskResult,
    RecordOrphanInput,
    RecordStatusInput,
    RecordStatusResult,
    UpdateSpecInput,
    UpdateSpecResult,
)
from meridian.tasks.spec import TaskStatus


class TaskActivities:
    def __init__(self, store: Store, regions: RegionView, reservations: Reservations | None = None):
        self.store = store
        self.regions = regions
        # This worker's recent placements, counted until the probes see their pods.
        self.reservations = reservations or Reservations()
        self.units = measure.BusinessUnits(self._business_unit)

    def _business_unit(self, task_id: str) -> str | None:
        task = self.store.get_task(task_id)
        return task.business_unit if task is not None else None

    @activity.defn(name="record_status")
    def record_status(self, inp: RecordStatusInput) -> RecordStatusResult:
        if inp.orphan is not None:
            self.record_orphan(inp.orphan)
        recorded = self.store.record_transition(
            Transition(
                task_id=inp.task_id,
                event_key=f"{inp.seq}",
                seq=inp.seq,
                status=inp.status,
                attempt=inp.attempt,
                region=inp.region,
                job_name=inp.job_name,
                reason=inp.reason,
                at=inp.at,
                error=inp.error,
                exit_code=inp.exit_code,
                placement_summary=inp.placement_summary,
                details=inp.details,
            )
        )
        if recorded:
            self._observe(inp)
        return RecordStatusResult(recorded=recorded)

    @measure.never_fails
    def _observe(self, inp: RecordStatusInput) -> None:
        measure.task_transition(
            status=inp.status,
            region=inp.region,
            business_unit=self.units.get(inp.task_id),
            reason=inp.reason,
        )
        # Only a later attempt can be the end of a failover: read its history then.
        if inp.status is TaskStatus.RUNNING and inp.attempt > 1:
            events = self.store.list_events(inp.task_id)
            measure.failover_completed(events, inp.seq, inp.at)

    @activity.defn(name="update_spec")
    def update_spec(self, inp: UpdateSpecInput) -> UpdateSpecResult:
        self.store.update_spec(inp.task_id, inp.spec)
        return UpdateSpecResult(updated=True)

    @activity.defn(name="place_task")
    def place_task(self, inp: PlaceTaskInput) -> PlaceTaskResult:
        started = time.monotonic()
        self.units.remember(inp.task_id, inp.spec.business_unit)
        # Runs as a local activity: its result is recorded in the workflow's history and
        # replay reads it from there, so the ledger (and the clock) cannot change a replay.
        placed = place_for_task(
            inp,
            self.regions.snapshots(),
            self.reservations,
            self.regions.weights,
            self.regions.catalog,
            at=datetime.now(UTC),
            burst=self.regions.burst,
        )
        decision = placed.decision
        decided_at = activity.info().current_attempt_scheduled_time
        self.store.record_placement(
            inp.task_id, inp.attempt, inp.seq, decision.model_dump(mode="json"), decided_at
        )
        measure.placement(decision, time.monotonic() - started)
        return placed.result

    @activity.defn(name="record_orphan")
    def record_orphan(self, inp: RecordOrphanInput) -> bool:
        return self.store.record_orphan(
            region=inp.region,
            job_name=inp.job_name,
            task_id=inp.task_id,
            attempt=inp.attempt,
            reason=inp.reason,
            at=inp.at,
            namespace=inp.namespace,
        )

    @activity.defn(name="region_health")
    def region_health(self, inp: RegionHealthInput) -> RegionHealthResult:
        state = self.store.get_region_states().get(inp.region)
        if state is None:
            return RegionHealthResult(region=inp.region, down=False, reason="no health recorded")
        return RegionHealthResult(
            region=inp.region,
            down=state.state == "down",
            state=state.state,
            reason=state.reason or "",
        )
