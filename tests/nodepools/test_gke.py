"""GKE adapter against the real ClusterManagerClient over its REST transport (anonymous
credentials) and the Compute REST API, both intercepted by `responses`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from google.auth.credentials import AnonymousCredentials
from google.cloud import container_v1

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.gke import per_zone_count
from meridian.nodepools.registry import provider_for

POOL = (
    "https://container.googleapis.com/v1/projects/proj/locations/europe-west1/clusters/prod"
    "/nodePools/np-general"
)
ZONES = ("europe-west1-b", "europe-west1-c")
COMPUTE = "https://www.googleapis.com/compute/v1/projects/proj/zones"


def igm(zone: str) -> str:
    return f"{COMPUTE}/{zone}/instanceGroupManagers/gke-prod-np-general-{zone[-1]}-grp"


def node_pool(auto: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "np-general",
        "locations": list(ZONES),
        "instanceGroupUrls": [igm(z) for z in ZONES],
        "autoscaling": auto or {},
        "status": "RUNNING",
    }


def mock_groups(per_zone: int = 2) -> None:
    for zone in ZONES:
        responses.get(igm(zone), json={"targetSize": per_zone})
        responses.post(
            f"{igm(zone)}/listManagedInstances",
            json={
                "managedInstances": [
                    {
                        "instance": f"{COMPUTE}/{zone}/instances/gke-prod-np-{zone[-1]}-{i}",
                        "currentAction": "NONE",
                    }
                    for i in range(per_zone)
                ]
            },
        )


def operation() -> dict[str, Any]:
    return {"name": "operation-1", "status": "RUNNING"}


@pytest.fixture
def provider() -> Any:
    client = container_v1.ClusterManagerClient(credentials=AnonymousCredentials(), transport="rest")
    return provider_for(
        "gke",
        {
            "name": "general",
            "project": "proj",
            "location": "europe-west1",
            "cluster": "prod",
            "node_pool": "np-general",
            "min": 2,
            "max": 9,
        },
        client=client,
        compute_session=requests.Session(),
    )


def test_per_zone_rounding() -> None:
    assert per_zone_count(5, 2, 9) == 3  # rounds up: 6 nodes
    assert per_zone_count(9, 2, 9) == 4  # 10 would pass max: 8 nodes
    assert per_zone_count(4, 3, 10) == 2


@responses.activate
def test_describe_sums_zonal_groups(provider: Any) -> None:
    responses.get(POOL, json=node_pool())
    mock_groups(2)
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current) == (2, 4, 9, 4)
    assert state.nodes[0] == "gke-prod-np-b-0" and state.autoscaler_enabled is False


@responses.activate
def test_set_desired_sends_per_zone_count(provider: Any) -> None:
    responses.get(POOL, json=node_pool())
    mock_groups(2)
    size = responses.post(f"{POOL}:setSize", json=operation())
    provider.set_desired("general", 5)
    # 5 nodes over 2 zones: 3 per zone (the name travels in the URL path).
    assert size.calls[0].request.url.startswith(f"{POOL}:setSize")
    assert json.loads(size.calls[0].request.body) == {"nodeCount": 3}


@responses.activate
def test_autoscaled_pool_takes_total_bounds_only(provider: Any) -> None:
    responses.get(
        POOL,
        json=node_pool(
            {"enabled": True, "minNodeCount": 1, "maxNodeCount": 4, "locationPolicy": "BALANCED"}
        ),
    )
    mock_groups(2)
    autoscaling = responses.post(f"{POOL}:setAutoscaling", json=operation())
    state = provider.describe("general")
    assert (state.min, state.max, state.autoscaler_enabled) == (2, 8, True)
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 5)
    provider.set_bounds("general", 3, 12)
    body = json.loads(autoscaling.calls[0].request.body)
    assert body["autoscaling"] == {
        "enabled": True,
        "totalMinNodeCount": 3,
        "totalMaxNodeCount": 12,
        # The REST transport sends enums as integers (enum-encoding=int).
        "locationPolicy": int(container_v1.NodePoolAutoscaling.LocationPolicy.BALANCED),
    }


@responses.activate
def test_manual_pool_bounds_are_refused(provider: Any) -> None:
    responses.get(POOL, json=node_pool())
    mock_groups(2)
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 1, 3)


@responses.activate
def test_remove_nodes_deletes_instances_from_their_group(provider: Any) -> None:
    responses.get(POOL, json=node_pool())
    mock_groups(2)
    delete = responses.post(f"{igm(ZONES[1])}/deleteInstances", json={"name": "op"})
    provider.remove_nodes("general", ["gke-prod-np-c-1"])
    assert json.loads(delete.calls[0].request.body) == {
        "instances": ["zones/europe-west1-c/instances/gke-prod-np-c-1"]
    }


@responses.activate
def test_errors_are_mapped(provider: Any) -> None:
    responses.get(
        POOL,
        status=429,
        headers={"Retry-After": "4"},
        json={"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
    )
    with pytest.raises(NodePoolThrottled) as throttled:
        provider.describe("general")
    assert throttled.value.retry_after == 4.0
    responses.replace(
        responses.GET,
        POOL,
        status=404,
        json={"error": {"code": 404, "message": "no pool", "status": "NOT_FOUND"}},
    )
    with pytest.raises(NodePoolNotFound):
        provider.describe("general")
    responses.replace(responses.GET, POOL, json=node_pool())
    responses.get(igm(ZONES[0]), status=503, body="unavailable")
    with pytest.raises(NodePoolError) as outage:
        provider.describe("general")
    assert outage.value.retryable is True
