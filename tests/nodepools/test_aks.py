"""AKS adapter against the real azure-mgmt-containerservice client; azure-core sends
through its RequestsTransport, so `responses` sees the exact HTTP requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from azure.core.credentials import AccessToken
from azure.mgmt.containerservice import ContainerServiceClient

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.registry import provider_for

BASE = (
    "https://management.azure.com/subscriptions/sub-1/resourceGroups/rg-prod/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod/agentPools/np1"
)


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 4_102_444_800)


def agent_pool(count: int = 3, auto: bool = False, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "count": count,
        "vmSize": "Standard_D8s_v5",
        "mode": "User",
        "enableAutoScaling": auto,
        "provisioningState": "Succeeded",
        **extra,
    }
    return {"id": "/x/agentPools/np1", "name": "np1", "properties": properties}


def machines(*names: str) -> dict[str, Any]:
    return {"value": [{"name": n, "id": f"/x/machines/{n}", "properties": {}} for n in names]}


NODES = ("aks-np1-1234-vmss000000", "aks-np1-1234-vmss000001", "aks-np1-1234-vmss000002")


@pytest.fixture
def provider() -> Any:
    client = ContainerServiceClient(FakeCredential(), "sub-1", retry_total=0)
    return provider_for(
        "aks",
        {
            "name": "general",
            "resource_group": "rg-prod",
            "cluster": "aks-prod",
            "agent_pool": "np1",
            "min": 1,
            "max": 6,
        },
        client=client,
    )


@responses.activate
def test_describe_manual_pool_uses_config_bounds(provider: Any) -> None:
    responses.get(BASE, json=agent_pool(3))
    responses.get(f"{BASE}/machines", json=machines(*NODES))
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current) == (1, 3, 6, 3)
    assert state.nodes == list(NODES) and state.autoscaler_enabled is False
    assert "api-version=" in responses.calls[0].request.url


@responses.activate
def test_set_desired_puts_the_whole_pool_with_the_new_count(provider: Any) -> None:
    responses.get(BASE, json=agent_pool(3))
    responses.get(f"{BASE}/machines", json=machines(*NODES))
    put = responses.put(BASE, json=agent_pool(5), status=200)
    provider.set_desired("general", 5)
    assert put.call_count == 1
    body = json.loads(put.calls[0].request.body)
    assert body["properties"]["count"] == 5
    assert body["properties"]["vmSize"] == "Standard_D8s_v5"  # the rest is preserved


@responses.activate
def test_autoscaled_pool_refuses_desired_and_takes_bounds(provider: Any) -> None:
    responses.get(BASE, json=agent_pool(3, auto=True, minCount=2, maxCount=8))
    responses.get(f"{BASE}/machines", json=machines(*NODES))
    put = responses.put(BASE, json=agent_pool(3, auto=True, minCount=2, maxCount=9))
    state = provider.describe("general")
    assert (state.min, state.max, state.autoscaler_enabled) == (2, 8, True)
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 4)
    assert put.call_count == 0
    provider.set_bounds("general", 2, 9)
    body = json.loads(put.calls[0].request.body)["properties"]
    assert (body["minCount"], body["maxCount"], body["count"]) == (2, 9, 3)


@responses.activate
def test_manual_pool_bounds_are_not_azures(provider: Any) -> None:
    responses.get(BASE, json=agent_pool(3))
    responses.get(f"{BASE}/machines", json=machines(*NODES))
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 0, 4)


@responses.activate
def test_remove_nodes_posts_delete_machines(provider: Any) -> None:
    responses.get(BASE, json=agent_pool(3))
    responses.get(f"{BASE}/machines", json=machines(*NODES))
    post = responses.post(
        f"{BASE}/deleteMachines",
        status=202,
        headers={"Location": f"{BASE}/operations/1"},
    )
    provider.remove_nodes("general", [NODES[2]])
    assert post.call_count == 1
    assert json.loads(post.calls[0].request.body) == {"machineNames": [NODES[2]]}


@responses.activate
def test_throttling_not_found_and_server_errors(provider: Any) -> None:
    error = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    responses.get(BASE, json=error, status=429, headers={"Retry-After": "17"})
    with pytest.raises(NodePoolThrottled) as throttled:
        provider.describe("general")
    assert throttled.value.retry_after == 17.0
    responses.replace(
        responses.GET, BASE, status=404, json={"error": {"code": "NotFound", "message": "no pool"}}
    )
    with pytest.raises(NodePoolNotFound):
        provider.describe("general")
    responses.replace(
        responses.GET,
        BASE,
        status=403,
        json={"error": {"code": "AuthorizationFailed", "message": "no"}},
    )
    with pytest.raises(NodePoolError) as denied:
        provider.describe("general")
    assert denied.value.retryable is False
