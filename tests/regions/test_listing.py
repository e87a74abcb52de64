"""One listing per tick: a unit worker's health probe and scaling observation of a region
read the same nodes and pods, listed once."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.jobs import JobActivities
from activities.scaling import ScalingUnitActivities
from meridian.kube.errors import KubeUnavailable
from meridian.kube.gateway import JobGateway
from meridian.regions.config import RegionsFile
from meridian.regions.contracts import RegionProbeInput
from meridian.regions.listing import RegionListings
from meridian.scaling.contracts import ObserveRegionInput
from tests.regions.test_load import NODES, PODS

REGION = "aws-us-east-1"


class ListedGateway(JobGateway):
    """Answers every listing with NODES and PODS and counts them; `down` refuses."""

    def __init__(self) -> None:
        super().__init__(SimpleNamespace(timeout=1), max_retry_wait=0)  # type: ignore[arg-type]
        self.listed: list[str] = []
        self.down = False

    def nodes_and_live_pods(
        self, region: str, *, within: float | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.down:
            raise KubeUnavailable("connection refused")
        self.listed.append(region)
        return {"items": NODES}, {"items": PODS}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def unit(gateway: ListedGateway, listings: RegionListings) -> tuple[Any, Any, Any]:
    regions = RegionsFile.model_validate(
        {"regions": [{"name": REGION, "provider": "aws", "location": "us-east-1"}]}
    )
    jobs = JobActivities(gateway, namespace="ns", listings=listings)
    scaling = ScalingUnitActivities(gateway, regions, control_url=None, listings=listings)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=5))

    def probe() -> Any:
        return env.run(jobs.probe_region, RegionProbeInput(region=REGION))

    def observe() -> Any:
        return env.run(scaling.observe_region_nodes, ObserveRegionInput(region=REGION))

    return probe, observe, listings


def test_a_ticks_probe_and_observation_list_the_region_once() -> None:
    gateway, clock = ListedGateway(), Clock()
    probe, observe, _ = unit(gateway, RegionListings(gateway, ttl_seconds=3.0, clock=clock))
    probed = probe()
    clock.now += 1.0
    observed = observe()
    assert gateway.listed == [REGION]
    # Both read the same cluster, with the same meaning of pending.
    assert probed.snapshot.pending_pods == 2
    assert [r.cpu for r in observed.pending_pods] == [16000]
    assert len(observed.observation.nodes) == probed.snapshot.nodes_total == len(NODES)


def test_the_probe_always_asks_the_api_and_a_stale_listing_is_not_reused() -> None:
    gateway, clock = ListedGateway(), Clock()
    probe, observe, _ = unit(gateway, RegionListings(gateway, ttl_seconds=3.0, clock=clock))
    probe()
    probe()  # the probe measures the API: never served from the cache
    assert len(gateway.listed) == 2
    clock.now += 3.0
    observe()  # the last probe's listing is too old now
    assert len(gateway.listed) == 3


def test_a_region_that_does_not_answer_reads_unreachable_and_fails_the_observation() -> None:
    gateway, clock = ListedGateway(), Clock()
    probe, observe, _ = unit(gateway, RegionListings(gateway, clock=clock))
    gateway.down = True
    result = probe()
    assert not result.reachable and "connection refused" in (result.error or "")
    with pytest.raises(Exception, match="connection refused"):
        observe()
