"""Region health: turn probes into states, and tell a dead region's tasks to move."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from meridian.channels.signals import signal_tasks
from meridian.queues import region_task_queue
from meridian.regions.contracts import (
    AssessRegionsInput,
    AssessRegionsResult,
    ProbeOutcome,
    SignalRegionTasksInput,
    SignalRegionTasksResult,
    TriggerSweepInput,
)
from meridian.regions.network import smooth_values
from meridian.regions.view import RegionView
from meridian.settings import FailoverSettings
from meridian.store import Store
from meridian.tasks.contracts import SIGNAL_INFRA_FAILURE, InfraFailure
from meridian.temporal import recent_pollers

ERROR_RATE_ALPHA = 0.3
# Temporal's task-queue description of a region with pollers is refreshed this often.
POLLERS_REFRESH_SECONDS = 10.0
# Details the region control loop owns (merge_region_details); the monitor never
# overwrites them with the stale copy it read.
log = logging.getLogger(__name__)

CONTROL_LOOP_KEYS = ("draining", "draining_reason", "scaling")


def next_state(
    previous: str | None,
    details: dict[str, Any],
    probe: ProbeOutcome,
    at: datetime,
    failover: FailoverSettings,
    pollers: int | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """Pure: (state, reason, details) after one probe. Down only after the grace period.

    `pollers`: how many workers Temporal's description of the region's task queue lists
    as polling lately (None: unknown). A unit process can answer its probes while its
    Job worker no longer polls `region.<name>`; zero pollers is then as bad as no answer.

    The API error rate is smoothed over probes (EWMA): an unanswered probe counts as all
    errors, an answered one as the share of its requests that got 429/5xx. At or above
    `degraded_error_rate` the region is degraded; at or above `down_error_rate` it is
    failing, which, like being unreachable, makes it down once it lasts the grace period.
    A flaky API that mostly answers is degraded, never down: its tasks stay where they are.
    So is a slow one: the probe's API time, smoothed the same way, at or above
    `degraded_latency_ms` makes the region degraded; only no answer within the probe's
    deadline counts as unreachable.
    """
    if probe.worker_answered and pollers == 0:
        probe = probe.model_copy(
            update={
                "reachable": False,
                "worker_answered": False,
                "error": f"no poller on {region_task_queue(probe.region)} "
                "in Temporal's task-queue description",
            }
        )
    previous_rate = float(details.get("api_error_rate") or 0.0)
    observed = probe.api_error_rate if probe.reachable else 1.0
    error_rate = (1 - ERROR_RATE_ALPHA) * previous_rate + ERROR_RATE_ALPHA * observed
    new = dict(details)
    new["api_error_rate"] = round(error_rate, 4)
    new["worker_polling"] = probe.worker_answered
    if pollers is not None:
        new["pollers"] = pollers
    new["last_probe_at"] = at.isoformat()
    latency_ms = float(details.get("api_latency_ms") or 0.0)
    if probe.reachable:
        new["load"] = {k: v for k, v in probe.snapshot.items() if k != "network_samples"}
        # Smoothed like the error rate: one slow probe (a pause anywhere) is not a slow API.
        latency_ms = (1 - ERROR_RATE_ALPHA) * latency_ms + ERROR_RATE_ALPHA * probe.api_latency_ms
        new["api_latency_ms"] = round(latency_ms, 1)
    failing: str | None = None
    if not probe.reachable:
        failing = probe.error or "unreachable"
        if not probe.worker_answered:
            failing = f"unit worker not polling its task queue ({failing})"
    elif error_rate >= failover.down_error_rate:
        failing = f"API failing: recent error rate {error_rate:.0%}"
    if failing is None:
        new["bad_since"] = None
        troubles = []
        if error_rate >= failover.degraded_error_rate:
            troubles.append(f"recent API error rate {error_rate:.0%}")
        if latency_ms >= failover.degraded_latency_ms:
            troubles.append(f"API slow: {latency_ms / 1000:.1f}s per probe (smoothed)")
        if troubles:
            return "degraded", "; ".join(troubles), new
        return "up", "healthy", new
    bad_since_raw = details.get("bad_since")
    bad_since = datetime.fromisoformat(bad_since_raw) if bad_since_raw else at
    new["bad_since"] = bad_since.isoformat()
    bad_for = (at - bad_since).total_seconds()
    if previous == "down" or bad_for >= failover.region_grace_seconds:
        return "down", f"{failing} for {bad_for:.0f}s", new
    return (
        "degraded",
        f"{failing} for {bad_for:.0f}s (grace {failover.region_grace_seconds:.0f}s)",
        new,
    )


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
        return await asyncio.to_thread(self._assess, inp, pollers)

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
        self, inp: AssessRegionsInput, pollers: dict[str, int | None]
    ) -> AssessRegionsResult:
        states = self.store.get_region_states()
        result = AssessRegionsResult()
        for probe in inp.probes:
            current = states.get(probe.region)
            previous = current.state if current is not None else None
            details = dict(current.details or {}) if current is not None else {}
            state, reason, new_details = next_state(
                previous, details, probe, inp.at, self.failover, pollers.get(probe.region)
            )
            self.store.record_region_state(
                probe.region, state, reason, inp.at, new_details, keep_details=CONTROL_LOOP_KEYS
            )
            self._record_network(probe, inp.at)
            result.note(probe.region, previous, state, reason)
            if state == "degraded" and new_details.get("bad_since"):
                bad_since = datetime.fromisoformat(str(new_details["bad_since"]))
                left = self.failover.region_grace_seconds - (inp.at - bad_since).total_seconds()
                if result.next_deadline_seconds is None or left < result.next_deadline_seconds:
                    result.next_deadline_seconds = max(0.0, left)
        self.view.invalidate()
        return result

    def _record_network(self, probe: ProbeOutcome, at: datetime) -> None:
        samples = probe.snapshot.get("network_samples") or []
        if not samples:
            return
        known = {p.target: p for p in self.store.list_network_paths(from_region=probe.region)}
        for sample in samples:
            target = str(sample.get("target"))
            rtt, loss = float(sample.get("rtt_ms", 0.0)), float(sample.get("loss", 0.0))
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

    def _active_in(self, region: str) -> list[Any]:
        refs: list[Any] = []
        after: str | None = None
        while True:
            page = self.store.list_active_tasks(region=region, after_id=after, limit=1000)
            refs.extend(page)
            if len(page) < 1000:
                return refs
            after = page[-1].id
