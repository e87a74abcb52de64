"""The region monitor's contract: workflow, signal, probe and health inputs/results."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from meridian.regions.models import ProbeSnapshot, RegionHealth, ReportedHealth

REGION_MONITOR_WORKFLOW = "RegionMonitorWorkflow"
REGION_MONITOR_ID = "meridian-region-monitor"

# Signal of RegionMonitorWorkflow: a unit worker saw its region's API fail (a watch cut,
# a refused connection) and asks for a probe now instead of at the next tick.
SIGNAL_REGION_SUSPECT = "region_suspect"


class RegionProbeInput(BaseModel):
    region: str


class RegionProbeResult(BaseModel):
    region: str
    reachable: bool
    error: str | None = None
    # Share of the probe's requests the API answered with 429/5xx (retried ones count):
    # an API that answers is there, however badly; this says how badly.
    api_error_rate: float = 0.0
    # Wall time of the probe's API requests (sent together): how slow the API answers.
    api_latency_ms: float = 0.0
    # Empty (all zeros, no samples) when the region did not answer.
    snapshot: ProbeSnapshot = Field(default_factory=ProbeSnapshot)


class RegionHealthInput(BaseModel):
    region: str


class RegionHealthResult(BaseModel):
    region: str
    down: bool
    state: ReportedHealth = RegionHealth.UNKNOWN
    reason: str = ""


class ProbeOutcome(BaseModel):
    region: str
    reachable: bool
    worker_answered: bool
    error: str | None = None
    api_error_rate: float = 0.0
    api_latency_ms: float = 0.0
    snapshot: ProbeSnapshot = Field(default_factory=ProbeSnapshot)


class RegionSuspect(BaseModel):
    region: str
    reason: str = ""


class AssessRegionsInput(BaseModel):
    probes: list[ProbeOutcome]
    at: datetime


class RegionTransition(BaseModel):
    region: str
    state: ReportedHealth
    reason: str


class AssessRegionsResult(BaseModel):
    states: dict[str, ReportedHealth] = Field(default_factory=dict)
    newly_down: list[RegionTransition] = Field(default_factory=list)
    recovered: list[RegionTransition] = Field(default_factory=list)
    # Seconds until the earliest failing region's grace period runs out: the monitor
    # checks again right then, so "down" is declared on time, not up to a tick late.
    next_deadline_seconds: float | None = None

    def note(
        self, region: str, previous: RegionHealth | None, state: RegionHealth, reason: str
    ) -> None:
        """Record `region`'s state; a move into or out of "down" is a transition the
        monitor acts on (fence and move its tasks, or sweep its stale Jobs)."""
        self.states[region] = state
        transition = RegionTransition(region=region, state=state, reason=reason)
        down = RegionHealth.DOWN
        if state == down and previous != down:
            self.newly_down.append(transition)
        elif previous == down and state != down:
            self.recovered.append(transition)


class TriggerSweepInput(BaseModel):
    schedule_id: str
    reason: str


class SignalRegionTasksInput(BaseModel):
    region: str
    reason: str


class SignalRegionTasksResult(BaseModel):
    signalled: int


# Of a probe's start-to-close time, what is kept for the network samples and the reply;
# the rest is the region API's.
PROBE_REPLY_RESERVE_SECONDS = 1.0


def probe_api_budget_seconds(probe_seconds: float) -> float:
    """How long a probe given `probe_seconds` to finish may wait for the region's API."""
    return max(0.5, probe_seconds - PROBE_REPLY_RESERVE_SECONDS)


class RegionMonitorInput(BaseModel):
    regions: list[str]
    interval_seconds: float = 2.0
    # A probe no unit worker picks up within this long: the worker is not polling.
    probe_timeout_seconds: float = 3.0
    # A probe taken up has this long to answer: the API's time to reply is in it, so a
    # slow region reads slow (degraded), and only one that does not answer reads down.
    probe_api_timeout_seconds: float = 5.0
    iterations_before_rollover: int = 200
