"""The region health state machine: one probe's outcome in, the region's next state out.

Pure: no clock, no I/O. The region monitor's `assess_regions` activity reads the last
state and details, calls `next_state` per probe and records what it returns.
"""

from __future__ import annotations

from datetime import datetime

from meridian.queues import region_task_queue
from meridian.regions.contracts import ProbeOutcome
from meridian.regions.details import RegionDetails
from meridian.regions.models import RegionHealth
from meridian.settings import FailoverSettings

# Weight of the newest probe in the smoothed API error rate and latency.
ERROR_RATE_ALPHA = 0.3


def next_state(
    previous: RegionHealth | None,
    details: RegionDetails,
    probe: ProbeOutcome,
    at: datetime,
    failover: FailoverSettings,
    pollers: int | None = None,
    polled_seconds_ago: float | None = None,
) -> tuple[RegionHealth, str, RegionDetails]:
    """(state, reason, details) after one probe. Down only after the grace period.

    `pollers`: how many workers Temporal's description of the region's task queue lists
    as polling lately (None: unknown). A unit process can answer its probes while its
    Job worker no longer polls `region.<name>`; zero pollers is then as bad as no answer.

    `polled_seconds_ago`: for a probe no worker took up, how long ago Temporal last saw
    a poll of the region's queues (None: no poller listed, or not asked). Within
    `worker_busy_seconds` the worker is alive but busy: the region is degraded and its
    bad spell neither starts nor ends, so a starved unit process never has its region
    declared down (and its tasks moved, their Jobs left running) for being late.

    The API error rate is smoothed over probes (EWMA): a probe the worker took up and
    the API did not answer counts as all errors, an answered one as the share of its
    requests that got 429/5xx, a probe no worker took up as nothing. At or above
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
    if not probe.worker_answered and _busy(polled_seconds_ago, failover):
        return _busy_state(previous, details, probe, at, polled_seconds_ago or 0.0)
    error_rate = details.api_error_rate
    if probe.worker_answered:
        observed = probe.api_error_rate if probe.reachable else 1.0
        error_rate = (1 - ERROR_RATE_ALPHA) * error_rate + ERROR_RATE_ALPHA * observed
    new = details.model_copy(
        update={
            "api_error_rate": round(error_rate, 4),
            "worker_polling": probe.worker_answered,
            "pollers": pollers if pollers is not None else details.pollers,
            "last_probe_at": at,
        }
    )
    if probe.reachable:
        new.load = probe.snapshot.load
        new.load_probed_at = at
        # Smoothed like the error rate: one slow probe (a pause anywhere) is not a slow API.
        latency = details.api_latency_ms or 0.0
        latency = (1 - ERROR_RATE_ALPHA) * latency + ERROR_RATE_ALPHA * probe.api_latency_ms
        new.api_latency_ms = round(latency, 1)
    failing = _failing(probe, error_rate, failover)
    if failing is None:
        new.bad_since = None
        state, reason = _healthy(error_rate, new.api_latency_ms or 0.0, failover)
        return state, reason, new
    bad_since = details.bad_since or at
    new.bad_since = bad_since
    bad_for = (at - bad_since).total_seconds()
    if previous == RegionHealth.DOWN or bad_for >= failover.region_grace_seconds:
        return RegionHealth.DOWN, f"{failing} for {bad_for:.0f}s", new
    return (
        RegionHealth.DEGRADED,
        f"{failing} for {bad_for:.0f}s (grace {failover.region_grace_seconds:.0f}s)",
        new,
    )


def _busy(polled_seconds_ago: float | None, failover: FailoverSettings) -> bool:
    return polled_seconds_ago is not None and polled_seconds_ago <= failover.worker_busy_seconds


def _busy_state(
    previous: RegionHealth | None,
    details: RegionDetails,
    probe: ProbeOutcome,
    at: datetime,
    polled_seconds_ago: float,
) -> tuple[RegionHealth, str, RegionDetails]:
    """A probe not taken up by a worker that polls: no news of the API, a late worker."""
    new = details.model_copy(update={"worker_polling": True, "last_probe_at": at})
    reason = (
        f"unit worker busy: probe not taken up ({probe.error or 'late'}), "
        f"but it polled {polled_seconds_ago:.1f}s ago"
    )
    if previous == RegionHealth.DOWN:
        # Down stays down until a probe is answered.
        return RegionHealth.DOWN, f"{reason}; down until a probe is answered", new
    return RegionHealth.DEGRADED, reason, new


def grace_left(details: RegionDetails, at: datetime, failover: FailoverSettings) -> float | None:
    """Seconds until a failing region's grace period runs out; None when it is not failing."""
    if details.bad_since is None:
        return None
    return max(0.0, failover.region_grace_seconds - (at - details.bad_since).total_seconds())


def _failing(probe: ProbeOutcome, error_rate: float, failover: FailoverSettings) -> str | None:
    """Why the region counts as failing after this probe; None when it does not."""
    if not probe.reachable:
        failing = probe.error or "unreachable"
        if not probe.worker_answered:
            return f"unit worker not polling its task queue ({failing})"
        return failing
    if error_rate >= failover.down_error_rate:
        return f"API failing: recent error rate {error_rate:.0%}"
    return None


def _healthy(
    error_rate: float, latency_ms: float, failover: FailoverSettings
) -> tuple[RegionHealth, str]:
    troubles = []
    if error_rate >= failover.degraded_error_rate:
        troubles.append(f"recent API error rate {error_rate:.0%}")
    if latency_ms >= failover.degraded_latency_ms:
        troubles.append(f"API slow: {latency_ms / 1000:.1f}s per probe (smoothed)")
    if troubles:
        return RegionHealth.DEGRADED, "; ".join(troubles)
    return RegionHealth.UP, "healthy"
