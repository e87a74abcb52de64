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
from meridian.regions.load import compute_load, is_live
from meridian.regions.pod_cache import slim_pod
from meridian.scaling.contracts import ObserveRegionInput
from meridian.scaling.observe import observe as observe_pods
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


class SyncedCache:
    """Stands in for a PodCache: `synced` as set, its pods the slim PODS."""

    def __init__(self, synced: bool) -> None:
        self.is_synced = synced

    def synced(self, region: str) -> bool:
        return self.is_synced

    def pods(self, region: str) -> list[dict[str, Any]]:
        return [slim_pod(p) for p in PODS if is_live(p)]


class NodesGateway(ListedGateway):
    def __init__(self) -> None:
        super().__init__()
        self.nodes_listed: list[str] = []

    def list_nodes(self, region: str, *, within: float | None = None) -> dict[str, Any]:
        if self.down:
            raise KubeUnavailable("connection refused")
        self.nodes_listed.append(region)
        return {"items": NODES}


def test_a_synced_cache_leaves_the_probe_only_the_nodes_to_list() -> None:
    gateway, cache = NodesGateway(), SyncedCache(synced=True)
    listings = RegionListings(gateway, pod_cache=cache)  # type: ignore[arg-type]
    probe, observe, _ = unit(gateway, listings)
    probed = probe()
    assert (gateway.nodes_listed, gateway.listed) == ([REGION], [])
    assert (listings.cached, listings.uncached) == (1, 0)
    # The same load as from the full list (the first test's figures).
    assert probed.snapshot.pending_pods == 2
    assert [r.cpu for r in observe().pending_pods] == [16000]

    cache.is_synced = False  # starting, or cut off: the full list as before
    probe()
    assert (gateway.nodes_listed, gateway.listed) == ([REGION], [REGION])
    assert (listings.cached, listings.uncached) == (1, 1)


def test_with_a_synced_cache_a_region_whose_nodes_do_not_list_is_unreachable() -> None:
    gateway = NodesGateway()
    listings = RegionListings(gateway, pod_cache=SyncedCache(synced=True))  # type: ignore[arg-type]
    probe, _, _ = unit(gateway, listings)
    gateway.down = True
    result = probe()
    assert not result.reachable and "connection refused" in (result.error or "")


VIRTUAL = {
    "metadata": {"name": "vk", "labels": {"type": "virtual-kubelet"}},
    "status": {"allocatable": {"cpu": "100", "memory": "400Gi"}, "conditions": []},
}
# Everything a consumer reads, and much that none does.
RICH = [
    {
        "metadata": {
            "name": name,
            "namespace": "meridian-ads",
            "uid": f"uid-{name}",
            "labels": {
                "meridian.io/managed": "true",
                "meridian.io/task-id": f"task-{name}",
                "meridian.io/capacity": "serverless",
                "job-name": name,
            },
            "annotations": {
                "meridian.io/billed-cpu": "1",
                "meridian.io/billed-memory": "2Gi",
                "kubesim.io/duration": "1h",
                "kubectl.kubernetes.io/last-applied-configuration": "x" * 2000,
            },
            "ownerReferences": [{"kind": owner, "name": "o", "uid": "u"}],
            "managedFields": [{"manager": "kubesim"}],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                },
                {"name": "sidecar", "image": "busybox"},
            ],
        },
        "status": {
            "phase": "Running" if node_name else "Pending",
            "startTime": "2026-01-01T00:00:00Z",
            "podIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}]
            + (
                []
                if node_name
                else [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
            ),
        },
    }
    for name, node_name, owner in [
        ("on-a", "a", "Job"),
        ("daemon", "b", "DaemonSet"),
        ("burst", "vk", "Job"),
        ("waiting", None, "Job"),
    ]
]


def test_slim_pods_read_as_whole_ones() -> None:
    nodes = [*NODES, VIRTUAL]
    whole = [p for p in PODS + RICH if is_live(p)]
    slim = [slim_pod(p) for p in whole]
    now = 1_800_000_000.0
    assert compute_load(nodes, slim, now) == compute_load(nodes, whole, now)
    assert compute_load(nodes, slim, now).serverless.waiting_pods == 1  # type: ignore[union-attr]
    assert observe_pods(REGION, 0.0, nodes, slim, []) == observe_pods(REGION, 0.0, nodes, whole, [])
