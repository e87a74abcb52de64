"""Region health: turn probes into states, and tell a dead region's tasks to move."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from meridian.channels.signals import signal_tasks
from meridian.observability import record as measure
from meridian.queues import region_health_queue, region_task_queue
from meridian.regions.contracts import (
    AssessRegionsInput,
    AssessRegionsResult,
    ProbeOutcome,
    SignalRegionTasksInput,
    SignalRegionTasksResult,
    TriggerSweepInput,
)
from meridian.regions.details import RegionDetails
from meridian.regions.health import grace_left, next_state
from meridian.regions.models import RegionHealth
from meridian.regions.network import smooth_values
from meridian.regions.view import RegionView
from meridian.scaling.contracts import CONTROL_DETAIL_KEYS
from meridian.settings import FailoverSettings
from meridian.store import ActiveTaskRef, Store
from meridian.tasks.contracts import SIGNAL_INFRA_FAILURE, InfraFailure
from meridian.temporal import last_poll_age, recent_pollers

# Temporal's task-queue description of a region with pollers is refreshed this often.
POLLERS_REFRESH_SECONDS = 10.0


class RegionActivities:
    def __init__(
        self,
        store: Store,
        view: RegionView,
        failover: FailoverSettings,
        client: Client | None = None,
    ):
        self.store = store
        self.view = view
        self.failover = failover
        # Region -> (when described, recent pollers or None when Temporal did not say).
        self._pollers_seen: dict[str, tuple[float, int | None]] = {}
        self.client = client

    @activity.defn(name="assess_regions")
    async def assess_regions(self, inp: AssessRegionsInput) -> AssessRegionsResult:
        pollers = await self._pollers([p.region for p in inp.probes])
        late = [p.region for p in inp.probes if not p.worker_answered]
        polled = await self._last_polls(late)
        return await asyncio.to_thread(self._assess, inp, pollers, polled)

    async def _last_polls(self, regions: list[str]) -> dict[str, float | None]:
        """For regions whose probe no worker took up: seconds since Temporal last saw a
        poll of the region's Job or health queue (a busy worker, not a dead one, if
        recent). Asked afresh each time: rare, and a cached answer would hide a death."""
        if self.client is None or not regions or self.failover.worker_busy_seconds <= 0:
            return {}
        client = self.client
        ages = await asyncio.gather(
            *(
                last_poll_age(client, [region_task_queue(r), region_health_queue(r)])
                for r in regions
            )
        )
        return dict(zip(regions, ages, strict=True))

    async def _pollers(self, regions: list[str]) -> dict[str, int | None]:
        """Recent pollers of each region's task queue, per Temporal.

        A positive count is reused for POLLERS_REFRESH_SECONDS (one description per
        region every so often, not every tick); zero or unknown is asked again each
        tick, so a worker that has just started polling is not held against its region.
        """
        if self.client is None:
            return {}
        client, now = self.client, time.monotonic()

        def due(region: str) -> bool:
            at, count = self._pollers_seen.get(region, (-math.inf, None))
            return not (count and now - at < POLLERS_REFRESH_SECONDS)

        stale = [r for r in regions if due(r)]
        counts = await asyncio.gather(
            *(recent_pollers(client, region_task_queue(r)) for r in stale)
        )
        self._pollers_seen.update((r, (now, count)) for r, count in zip(stale, counts, strict=True))
        return {r: self._pollers_seen[r][1] for r in regions}

    def _assess(
        self,
        inp: AssessRegionsInput,
        pollers: dict[str, int | None],
        polled: dict[str, float | None],
    ) -> AssessRegionsResult:
        states = self.store.get_region_states()
        result = AssessRegionsResult()
        for probe in inp.probes:
            current = states.get(probe.region)
            previous = current.state if current is not None else None
            details = current.details if current is not None else RegionDetails()
            state, reason, new_details = next_state(
                previous,
                details,
                probe,
                inp.at,
                self.failover,
                pollers.get(probe.region),
                polled.get(probe.region),
            )
            # The control loop's keys are its own: carried over under the row lock.
            self.store.record_region_state(
                probe.region, state, reason, inp.at, new_details, keep_details=CONTROL_DETAIL_KEYS
            )
            self._record_network(probe, inp.at)
            measure.region_assessed(probe, state)
            result.note(probe.region, previous, state, reason)
            left = grace_left(new_details, inp.at, self.failover)
            if state == RegionHealth.DEGRADED and left is not None:
                if result.next_deadline_seconds is None or left < result.next_deadline_seconds:
                    result.next_deadline_seconds = left
        self.view.invalidate()
        return result

    def _record_network(self, probe: ProbeOutcome, at: datetime) -> None:
        samples = probe.snapshot.network_samples
        if not samples:
            return
        known = {p.target: p for p in self.store.list_network_paths(from_region=probe.region)}
        for sample in samples:
            target, rtt, loss = sample.target, sample.rtt_ms, sample.loss
            previous = known.get(target)
            if previous is not None:
                rtt, loss = smooth_values(previous.rtt_ms, previous.loss, rtt, loss)
            samples_seen = (previous.samples if previous is not None else 0) + 1
            self.store.upsert_network_path(probe.region, target, rtt, loss, samples_seen, at)

    @activity.defn(name="trigger_job_sweep")
    async def trigger_job_sweep(self, inp: TriggerSweepInput) -> bool:
        if self.client is None:
            return False
        try:
            await self.client.get_schedule_handle(inp.schedule_id).trigger()
        except RPCError as exc:
            # No schedule (yet): the sweep's own interval still comes round.
            activity.logger.info("cannot trigger %s (%s): %s", inp.schedule_id, inp.reason, exc)
            return False
        return True

    @activity.defn(name="signal_region_tasks")
    async def signal_region_tasks(self, inp: SignalRegionTasksInput) -> SignalRegionTasksResult:
        if self.client is None:
            return SignalRegionTasksResult(signalled=0)
        refs = await asyncio.to_thread(self._active_in, inp.region)
        failure = InfraFailure(
            region=inp.region, reason=f"region {inp.region} down: {inp.reason}", region_down=True
        )
        signalled = await signal_tasks(
            self.client, ((ref.id, failure) for ref in refs), SIGNAL_INFRA_FAILURE
        )
        return SignalRegionTasksResult(signalled=signalled)

    def _active_in(self, region: str) -> list[ActiveTaskRef]:
        refs: list[ActiveTaskRef] = []
        after: str | None = None
        while True:
            page = self.store.list_active_tasks(region=region, after_id=after, limit=1000)
            refs.extend(page)
            if len(page) < 1000:
                return refs
            after = page[-1].id
