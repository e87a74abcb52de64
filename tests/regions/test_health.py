"""The region health state machine (pure): probes in, up / degraded / down out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meridian.regions.contracts import AssessRegionsResult, ProbeOutcome
from meridian.regions.details import RegionDetails
from meridian.regions.health import grace_left, next_state
from meridian.regions.load import RegionLoad
from meridian.regions.models import NetworkSample, ProbeSnapshot, RegionHealth
from meridian.regions.view import snapshot_from
from meridian.settings import FailoverSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UP, DEGRADED, DOWN = RegionHealth.UP, RegionHealth.DEGRADED, RegionHealth.DOWN
LOADED = ProbeSnapshot(
    nodes_ready=3, network_samples=[NetworkSample(target="aws:us-east-1", rtt_ms=5.0)]
)


def answered(**fields: object) -> ProbeOutcome:
    return ProbeOutcome.model_validate(
        {"region": "r", "reachable": True, "worker_answered": True, "snapshot": LOADED, **fields}
    )


def test_region_goes_down_only_after_the_grace_period() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    ok = answered()
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=False, error="timeout")
    state, _, details = next_state(None, RegionDetails(), ok, T0, failover)
    # The load is kept, the network samples are not (they go to the network paths).
    assert state is UP and details.load == RegionLoad(nodes_ready=3)
    state, reason, details = next_state(state, details, bad, T0 + timedelta(seconds=1), failover)
    assert state is DEGRADED and "not polling" in reason
    assert grace_left(details, T0 + timedelta(seconds=1), failover) == 10.0
    state, reason, details = next_state(state, details, bad, T0 + timedelta(seconds=12), failover)
    assert state is DOWN and "11s" in reason
    state, _, details = next_state(state, details, ok, T0 + timedelta(seconds=13), failover)
    assert state in (UP, DEGRADED) and details.bad_since is None
    assert grace_left(details, T0 + timedelta(seconds=13), failover) is None


def test_a_down_region_stays_down_until_a_probe_succeeds() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=True, error="refused")
    # Down, then a new bad spell: no second grace period.
    state, reason, _ = next_state(DOWN, RegionDetails(), bad, T0, failover)
    assert state is DOWN and reason.startswith("refused")


def test_no_poller_on_the_region_queue_counts_as_a_worker_not_polling() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    ok = answered()
    # The probe is answered, but Temporal lists nobody polling region.r: a unit process
    # alive without its Job worker.
    state, reason, details = next_state(UP, RegionDetails(), ok, T0, failover, pollers=0)
    assert state is DEGRADED and details.worker_polling is False and details.pollers == 0
    assert "region.r" in reason and "not polling" in reason
    state, _, details = next_state(state, details, ok, T0 + timedelta(seconds=11), failover, 0)
    assert state is DOWN
    # Pollers back (or unknown: Temporal did not answer) and it is the probe that counts.
    for pollers in (1, None):
        state, _, after = next_state(UP, RegionDetails(), ok, T0, failover, pollers)
        assert state is UP and after.worker_polling is True


def _probes(
    rates: list[float], failover: FailoverSettings, every: float = 2.0
) -> list[tuple[RegionHealth, str]]:
    """Feed answered probes with these per-probe API error rates; (state, reason) each."""
    state: RegionHealth = UP
    details = RegionDetails()
    seen = []
    for i, rate in enumerate(rates):
        state, reason, details = next_state(
            state,
            details,
            answered(api_error_rate=rate),
            T0 + timedelta(seconds=i * every),
            failover,
        )
        seen.append((state, reason))
    return seen


def test_flaky_api_that_answers_is_degraded_never_down() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    seen = _probes([0.4] * 30 + [0.0] * 5, failover)
    states = [s for s, _ in seen]
    assert DOWN not in states
    assert states[0] is UP and states[2] is DEGRADED  # smoothed: not on one bad probe
    assert "recent API error rate" in seen[10][1]
    assert states[-1] is UP  # errors gone: the rate decays below the mark


def test_api_failing_beyond_the_down_rate_is_down_after_the_grace_period() -> None:
    failover = FailoverSettings(region_grace_seconds=10, down_error_rate=0.8)
    seen = _probes([0.95] * 20, failover)
    states = [s for s, _ in seen]
    first_failing = next(i for i, (_, r) in enumerate(seen) if r.startswith("API failing"))
    first_down = states.index(DOWN)
    # Down once failing has lasted the grace period (probes every 2 s), not before.
    assert (first_down - first_failing) * 2.0 >= 10
    assert all(s is DEGRADED for s in states[first_failing:first_down])
    assert "API failing: recent error rate" in seen[first_down][1]


def test_slow_api_that_answers_is_degraded_never_down() -> None:
    failover = FailoverSettings(region_grace_seconds=10, degraded_latency_ms=1000)
    state: RegionHealth = UP
    details = RegionDetails()
    seen = []
    for i, latency in enumerate([2000.0] * 20 + [20.0] * 8):
        probe = answered(api_latency_ms=latency)
        state, reason, details = next_state(
            state, details, probe, T0 + timedelta(seconds=2 * i), failover
        )
        seen.append((state, reason))
    states = [s for s, _ in seen]
    assert DOWN not in states
    assert states[0] is UP and states[2] is DEGRADED  # smoothed: not on one slow probe
    assert "API slow: 2.0s" in seen[19][1]
    assert states[-1] is UP and (details.api_latency_ms or 0.0) < 1000


def test_a_probe_without_an_answer_keeps_the_last_latency_and_load() -> None:
    failover = FailoverSettings()
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=True, error="no answer")
    before = RegionDetails(api_latency_ms=1500.0, load=RegionLoad(nodes_ready=2))
    _, _, details = next_state(UP, before, bad, T0, failover)
    assert details.api_latency_ms == 1500.0 and details.load == RegionLoad(nodes_ready=2)


def test_the_load_keeps_the_time_of_the_probe_that_measured_it() -> None:
    # Placement keeps its reservations until a probe this recent can have seen them: an
    # unanswered probe must not pass for one that counted the region's pods.
    failover = FailoverSettings()
    _, _, details = next_state(UP, RegionDetails(), answered(), T0, failover)
    assert details.load_probed_at == T0
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=True, error="no answer")
    later = T0 + timedelta(seconds=2)
    _, _, details = next_state(UP, details, bad, later, failover)
    assert details.last_probe_at == later and details.load_probed_at == T0
    snap = snapshot_from("r", "aws", "us-east-1", UP, "healthy", details, {})
    assert snap.observed_at == T0


def test_the_control_loops_details_pass_through_untouched() -> None:
    before = RegionDetails(draining=True, draining_reason="at its ceiling")
    _, _, details = next_state(UP, before, answered(), T0, FailoverSettings())
    assert details.draining and details.draining_reason == "at its ceiling"


def test_only_moves_into_and_out_of_down_are_transitions() -> None:
    result = AssessRegionsResult()
    result.note("a", UP, DEGRADED, "slow")
    result.note("b", DEGRADED, DOWN, "refused for 12s")
    result.note("c", DOWN, UP, "healthy")
    result.note("d", None, DOWN, "never answered")
    assert [t.region for t in result.newly_down] == ["b", "d"]
    assert [t.region for t in result.recovered] == ["c"]
    assert result.states == {"a": DEGRADED, "b": DOWN, "c": UP, "d": DOWN}


def _unanswered(error: str = "activity ScheduleToStart timeout") -> ProbeOutcome:
    return ProbeOutcome(region="r", reachable=False, worker_answered=False, error=error)


def test_a_busy_worker_keeps_its_region_degraded_never_down() -> None:
    # Probes not taken up for a minute, while Temporal saw the worker poll a second ago:
    # a starved unit process, not a dead one. Its region is degraded, never down.
    failover = FailoverSettings(region_grace_seconds=10, worker_busy_seconds=5)
    state, _, details = next_state(None, RegionDetails(), answered(), T0, failover)
    for i in range(1, 31):
        at = T0 + timedelta(seconds=2 * i)
        state, reason, details = next_state(
            state, details, _unanswered(), at, failover, polled_seconds_ago=1.0
        )
        assert state is DEGRADED, (i, reason)
    assert reason.startswith("unit worker busy") and "polled 1.0s ago" in reason
    assert details.bad_since is None and details.worker_polling is True
    assert details.api_error_rate == 0.0  # no news of the API is not bad news
    # Its polls stop too: now it is a dead worker, down after the grace period.
    late = T0 + timedelta(seconds=70)
    state, reason, details = next_state(
        state, details, _unanswered(), late, failover, polled_seconds_ago=8.0
    )
    assert state is DEGRADED and "not polling" in reason and details.bad_since == late
    state, reason, details = next_state(
        state, details, _unanswered(), late + timedelta(seconds=11), failover, None
    )
    assert state is DOWN and "not polling" in reason


def test_a_down_region_whose_worker_is_busy_stays_down() -> None:
    failover = FailoverSettings(region_grace_seconds=10, worker_busy_seconds=5)
    state, reason, _ = next_state(
        DOWN, RegionDetails(), _unanswered(), T0, failover, polled_seconds_ago=0.5
    )
    assert state is DOWN and "busy" in reason and "until a probe is answered" in reason


def test_the_busy_check_can_be_turned_off() -> None:
    failover = FailoverSettings(region_grace_seconds=10, worker_busy_seconds=0)
    state, reason, _ = next_state(
        UP, RegionDetails(), _unanswered(), T0, failover, polled_seconds_ago=0.5
    )
    assert state is DEGRADED and "not polling" in reason


def test_an_unanswered_probe_says_nothing_about_the_api() -> None:
    # A worker gone for a while, then back with a healthy API: the region is up at once,
    # not "API failing" on an error rate its absence would have made up.
    failover = FailoverSettings(region_grace_seconds=10)
    state, _, details = next_state(None, RegionDetails(), answered(), T0, failover)
    for i in range(1, 8):
        state, _, details = next_state(
            state, details, _unanswered(), T0 + timedelta(seconds=2 * i), failover
        )
    assert state is DOWN and details.api_error_rate == 0.0
    state, reason, details = next_state(
        state, details, answered(), T0 + timedelta(seconds=20), failover
    )
    assert state is UP, reason
    # A probe the worker took up and the API did not answer is all errors.
    hung = ProbeOutcome(region="r", reachable=False, worker_answered=True, error="no answer")
    _, _, details = next_state(state, details, hung, T0 + timedelta(seconds=22), failover)
    assert details.api_error_rate > 0.25
