"""TKE adapter against the real tencentcloud TkeClient, which posts signed JSON through
`requests`; `responses` sees the action header and the exact body."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from responses import matchers
from tencentcloud.common import credential
from tencentcloud.tke.v20180525 import tke_client

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.registry import provider_for

URL = "https://tke.tencentcloudapi.com/"
IPS = ["10.1.0.11", "10.1.0.12", "10.1.0.13"]


def action(name: str, payload: dict[str, Any]) -> responses.BaseResponse:
    return responses.post(
        URL,
        json={"Response": {**payload, "RequestId": "req-1"}},
        match=[matchers.header_matcher({"X-TC-Action": name})],
    )


def pool_detail(desired: int = 3, status: str = "disabled") -> dict[str, Any]:
    return {
        "NodePool": {
            "NodePoolId": "np-abc",
            "Name": "general",
            "DesiredNodesNum": desired,
            "MinNodesNum": 1,
            "MaxNodesNum": 6,
            "AutoscalingGroupStatus": status,
            "LifeState": "normal",
        }
    }


def instances() -> dict[str, Any]:
    return {
        "TotalCount": 3,
        "InstanceSet": [
            {
                "InstanceId": f"ins-{i}",
                "LanIP": ip,
                "NodePoolId": "np-abc",
                "InstanceState": "running",
            }
            for i, ip in enumerate(IPS)
        ],
    }


@pytest.fixture
def provider() -> Any:
    client = tke_client.TkeClient(credential.Credential("AKIDtest", "secret"), "ap-guangzhou")
    return provider_for(
        "tke", {"name": "general", "cluster_id": "cls-1", "node_pool_id": "np-abc"}, client=client
    )


def bodies(name: str) -> list[dict[str, Any]]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.headers.get("X-TC-Action") == name
    ]


@responses.activate
def test_describe(provider: Any) -> None:
    action("DescribeClusterNodePoolDetail", pool_detail())
    action("DescribeClusterInstances", instances())
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current, state.nodes) == (1, 3, 6, 3, IPS)
    assert bodies("DescribeClusterNodePoolDetail") == [
        {"ClusterId": "cls-1", "NodePoolId": "np-abc"}
    ]
    listing = bodies("DescribeClusterInstances")[0]
    assert listing["Filters"] == [{"Name": "nodepool-id", "Values": ["np-abc"]}]
    assert responses.calls[0].request.headers["X-TC-Region"] == "ap-guangzhou"


@responses.activate
def test_set_desired(provider: Any) -> None:
    action("DescribeClusterNodePoolDetail", pool_detail())
    action("DescribeClusterInstances", instances())
    action("ModifyNodePoolDesiredCapacityAboutAsg", {})
    provider.set_desired("general", 5)
    assert bodies("ModifyNodePoolDesiredCapacityAboutAsg") == [
        {"ClusterId": "cls-1", "NodePoolId": "np-abc", "DesiredCapacity": 5}
    ]


@responses.activate
def test_autoscaled_pool_takes_only_bounds(provider: Any) -> None:
    action("DescribeClusterNodePoolDetail", pool_detail(status="enabled"))
    action("DescribeClusterInstances", instances())
    action("ModifyClusterNodePool", {})
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 4)
    provider.set_bounds("general", 2, 9)
    assert bodies("ModifyClusterNodePool") == [
        {"ClusterId": "cls-1", "NodePoolId": "np-abc", "MinNodesNum": 2, "MaxNodesNum": 9}
    ]


@responses.activate
def test_remove_nodes_deletes_instances_then_lowers_desired(provider: Any) -> None:
    action("DescribeClusterNodePoolDetail", pool_detail())
    action("DescribeClusterInstances", instances())
    action("DeleteClusterInstances", {"SuccInstanceIds": ["ins-1"]})
    action("ModifyNodePoolDesiredCapacityAboutAsg", {})
    provider.remove_nodes("general", [IPS[1]])
    assert bodies("DeleteClusterInstances") == [
        {"ClusterId": "cls-1", "InstanceIds": ["ins-1"], "InstanceDeleteMode": "terminate"}
    ]
    assert bodies("ModifyNodePoolDesiredCapacityAboutAsg")[0]["DesiredCapacity"] == 2


@responses.activate
def test_errors(provider: Any) -> None:
    def error(code: str) -> None:
        responses.post(
            URL, json={"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}}
        )

    error("RequestLimitExceeded")
    with pytest.raises(NodePoolThrottled):
        provider.describe("general")
    responses.reset()
    error("ResourceNotFound.NodePoolNotFound")
    with pytest.raises(NodePoolNotFound):
        provider.describe("general")
    responses.reset()
    error("InternalError")
    with pytest.raises(NodePoolError) as internal:
        provider.describe("general")
    assert internal.value.retryable is True
    responses.reset()
    error("AuthFailure.SignatureFailure")
    with pytest.raises(NodePoolError) as auth:
        provider.describe("general")
    assert auth.value.retryable is False
