"""Huawei CCE adapter against the real huaweicloudsdkcce client (it signs and sends
through `requests`), with `responses` asserting the exact requests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses
from huaweicloudsdkcce.v3 import CceClient
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.registry import provider_for

HOST = "https://cce.cn-north-4.myhuaweicloud.com"
CLUSTER = f"{HOST}/api/v3/projects/proj-1/clusters/cls-1"
POOL = f"{CLUSTER}/nodepools/np-1"
IPS = ["192.168.0.11", "192.168.0.12", "192.168.0.13"]


def node_pool(count: int = 3, auto: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "NodePool",
        "apiVersion": "v3",
        "metadata": {"name": "general", "uid": "np-1"},
        "spec": {
            "initialNodeCount": count,
            "autoscaling": auto or {"enable": False},
            "nodeTemplate": {"flavor": "c7.2xlarge.2", "az": "cn-north-4a"},
        },
        "status": {"currentNode": count, "phase": ""},
    }


def nodes() -> dict[str, Any]:
    items = [
        {
            "metadata": {
                "name": f"general-{i}",
                "uid": f"node-{i}",
                "annotations": {"kubernetes.io/node-pool.id": "np-1"},
            },
            "status": {"phase": "Active", "privateIP": ip},
        }
        for i, ip in enumerate(IPS)
    ]
    items.append(
        {
            "metadata": {
                "name": "other",
                "uid": "node-x",
                "annotations": {"kubernetes.io/node-pool.id": "np-2"},
            },
            "status": {"phase": "Active", "privateIP": "192.168.0.99"},
        }
    )
    return {"kind": "List", "apiVersion": "v3", "items": items}


@pytest.fixture
def provider() -> Any:
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    client = (
        CceClient.new_builder()
        .with_credentials(BasicCredentials("ak", "sk", "proj-1"))
        .with_endpoint(HOST)
        .with_http_config(config)
        .build()
    )
    return provider_for(
        "cce-huawei",
        {"name": "general", "cluster_id": "cls-1", "nodepool_id": "np-1", "min": 1, "max": 6},
        client=client,
    )


def mock_reads(auto: dict[str, Any] | None = None) -> None:
    responses.get(POOL, json=node_pool(auto=auto))
    responses.get(re.compile(re.escape(f"{CLUSTER}/nodes") + r"(\?.*)?$"), json=nodes())


@responses.activate
def test_describe_filters_nodes_by_pool(provider: Any) -> None:
    mock_reads()
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current, state.nodes) == (1, 3, 6, 3, IPS)
    assert responses.calls[0].request.headers["Authorization"].startswith("SDK-HMAC-SHA256")


@responses.activate
def test_set_desired_scales_the_default_group(provider: Any) -> None:
    mock_reads()
    scale = responses.post(f"{POOL}/operation/scale", json={"jobid": "job-1"})
    provider.set_desired("general", 5)
    assert json.loads(scale.calls[0].request.body) == {
        "kind": "NodePool",
        "apiVersion": "v3",
        "spec": {"desiredNodeCount": 5, "scaleGroups": ["default"]},
    }


@responses.activate
def test_autoscaled_pool_bounds(provider: Any) -> None:
    mock_reads(auto={"enable": True, "minNodeCount": 2, "maxNodeCount": 8})
    update = responses.put(POOL, json=node_pool())
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 4)
    provider.set_bounds("general", 2, 10)
    body = json.loads(update.calls[0].request.body)
    assert body["metadata"] == {"name": "general"}
    assert body["spec"]["ignoreInitialNodeCount"] is True
    assert body["spec"]["autoscaling"] == {"enable": True, "minNodeCount": 2, "maxNodeCount": 10}


@responses.activate
def test_manual_bounds_refused_and_remove_deletes_nodes(provider: Any) -> None:
    mock_reads()
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 0, 4)
    delete = responses.delete(f"{CLUSTER}/nodes/node-2", json={"kind": "Node"})
    provider.remove_nodes("general", [IPS[2]])
    assert delete.call_count == 1
    assert "nodepoolScaleDown" not in delete.calls[0].request.url


@responses.activate
def test_errors(provider: Any) -> None:
    responses.get(POOL, status=429, json={"error_code": "APIGW.0308", "error_msg": "throttled"})
    with pytest.raises(NodePoolThrottled):
        provider.describe("general")
    responses.replace(
        responses.GET,
        POOL,
        status=404,
        json={"errorCode": "CCE.01404001", "errorMessage": "not found"},
    )
    with pytest.raises(NodePoolNotFound):
        provider.describe("general")
    responses.replace(
        responses.GET,
        POOL,
        status=500,
        json={"errorCode": "CCE.01500001", "errorMessage": "internal"},
    )
    with pytest.raises(NodePoolError) as internal:
        provider.describe("general")
    assert internal.value.retryable is True
