"""The region types decode what older versions wrote: Temporal histories and stored
region details."""

from __future__ import annotations

from datetime import UTC, datetime

from meridian.regions.contracts import (
    AssessRegionsResult,
    ProbeOutcome,
    RegionHealthResult,
    RegionProbeResult,
)
from meridian.regions.details import RegionDetails
from meridian.regions.load import RegionLoad
from meridian.regions.models import RegionHealth
from meridian.scaling import ScalingMode


def test_probe_results_in_histories_decode() -> None:
    # As the probe wrote them when the snapshot was a dict (and as a test fake did).
    answered = RegionProbeResult.model_validate_json(
        '{"region": "r", "reachable": true, "snapshot": {"nodes_ready": 3,'
        ' "cpu_requested_millis": 500, "network_samples":'
        ' [{"target": "aws:us-east-1", "rtt_ms": 1.5, "loss": 0.0}]}}'
    )
    assert answered.snapshot.load == RegionLoad(nodes_ready=3, cpu_requested_millis=500)
    assert answered.snapshot.network_samples[0].rtt_ms == 1.5
    for old in ('{"cpu_used": 0.25, "nodes": 3}', "{}"):
        outcome = ProbeOutcome.model_validate_json(
            f'{{"region": "r", "reachable": false, "worker_answered": true, "snapshot": {old}}}'
        )
        assert outcome.snapshot.load == RegionLoad()


def test_a_state_this_version_does_not_know_decodes_as_unknown() -> None:
    result = AssessRegionsResult.model_validate_json(
        '{"states": {"a": "healthy", "b": "down"},'
        ' "recovered": [{"region": "a", "state": "healthy", "reason": "ok"}]}'
    )
    assert result.states == {"a": RegionHealth.UNKNOWN, "b": RegionHealth.DOWN}
    assert result.recovered[0].state is RegionHealth.UNKNOWN
    assert RegionHealthResult(region="r", down=False).state is RegionHealth.UNKNOWN


def test_details_stored_by_the_old_code_decode() -> None:
    stored = {
        "api_error_rate": 0.09,
        "worker_polling": True,
        "pollers": 1,
        "last_probe_at": "2026-01-01T00:00:02+00:00",
        "api_latency_ms": 12.5,
        "load": {"nodes_total": 3, "nodes_ready": 3, "pending_pods": 1},
        "bad_since": None,
        "draining": False,
        "draining_reason": None,
        "scaling": {
            "mode": "advise",
            "water_level": 0.42,
            "at": "2026-01-01T00:00:00+00:00",
            "pools": [{"name": "general", "min": 1, "desired": 3, "max": 5, "current": 3}],
            "pool_errors": {},
            "pending_pods": 1,
            "waiting_tasks": 0,
        },
    }
    details = RegionDetails.model_validate(stored)
    assert details.last_probe_at == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert details.load is not None and details.load.pending_pods == 1
    assert details.scaling is not None and details.scaling.mode is ScalingMode.ADVISE
    assert details.scaling.pools[0].desired == 3
    assert RegionDetails.model_validate({}).load is None
