"""ACK adapter against the real alibabacloud_cs20151215 client. Its Darabonba core sends
synchronous calls through `requests`, so `responses` sees the exact requests."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from alibabacloud_cs20151215.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.registry import provider_for

HOST = "https://cs.cn-hangzhou.aliyuncs.com"
POOL = f"{HOST}/clusters/c-123/nodepools/np-abc"
NODES = f"{HOST}/clusters/c-123/nodes"
NAMES = ["cn-hangzhou.10.0.0.1", "cn-hangzhou.10.0.0.2", "cn-hangzhou.10.0.0.3"]


def detail(desired: int = 3, auto: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "nodepool_info": {"nodepool_id": "np-abc", "name": "general"},
        "scaling_group": {"desired_size": desired, "instance_types": ["ecs.g7.2xlarge"]},
        "auto_scaling": auto or {"enable": False},
        "status": {"total_nodes": desired},
    }


def nodes_page(names: list[str], total: int) -> dict[str, Any]:
    return {
        "nodes": [
            {"node_name": n, "instance_id": f"i-{i}", "state": "running"}
            for i, n in enumerate(names)
        ],
        "page": {"page_number": 1, "page_size": 100, "total_count": total},
    }


@pytest.fixture
def provider() -> Any:
    client = Client(
        Config(
            access_key_id="ak-test",
            access_key_secret="sk-test",
            region_id="cn-hangzhou",
            endpoint="cs.cn-hangzhou.aliyuncs.com",
        )
    )
    return provider_for(
        "ack",
        {"name": "general", "cluster_id": "c-123", "nodepool_id": "np-abc", "min": 1, "max": 6},
        client=client,
    )


def mock_reads(desired: int = 3, auto: dict[str, Any] | None = None) -> None:
    responses.get(POOL, json=detail(desired, auto))
    responses.get(re.compile(re.escape(NODES) + r"\?.*"), json=nodes_page(NAMES, 3))


@responses.activate
def test_describe_reads_detail_and_pool_nodes(provider: Any) -> None:
    mock_reads()
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current) == (1, 3, 6, 3)
    assert state.nodes == NAMES
    query = parse_qs(urlparse(responses.calls[1].request.url).query)
    assert query["nodepool_id"] == ["np-abc"] and query["pageNumber"] == ["1"]
    # Signed with the access key given, as Alibaba's ROA signature requires.
    assert "Credential=ak-test," in responses.calls[0].request.headers["Authorization"]


@responses.activate
def test_set_desired_modifies_scaling_group(provider: Any) -> None:
    mock_reads()
    put = responses.put(POOL, json={"task_id": "T-1"})
    provider.set_desired("general", 5)
    assert json.loads(put.calls[0].request.body) == {"scaling_group": {"desired_size": 5}}


@responses.activate
def test_autoscaled_pool_bounds(provider: Any) -> None:
    mock_reads(auto={"enable": True, "min_instances": 2, "max_instances": 8})
    put = responses.put(POOL, json={"task_id": "T-2"})
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 4)
    provider.set_bounds("general", 2, 10)
    assert json.loads(put.calls[0].request.body) == {
        "auto_scaling": {"enable": True, "min_instances": 2, "max_instances": 10}
    }


@responses.activate
def test_manual_pool_bounds_refused(provider: Any) -> None:
    mock_reads()
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 0, 3)


@responses.activate
def test_remove_nodes_deletes_by_name_and_releases(provider: Any) -> None:
    mock_reads()
    delete = responses.delete(re.compile(re.escape(POOL) + r"/nodes\?.*"), json={"task_id": "T"})
    provider.remove_nodes("general", [NAMES[1]])
    query = parse_qs(urlparse(delete.calls[0].request.url).query)
    assert json.loads(query["nodes"][0]) == [NAMES[1]]
    assert query["release_node"][0].lower() == "true"
    assert query["drain_node"][0].lower() == "false"


@responses.activate
def test_errors(provider: Any) -> None:
    responses.get(
        POOL,
        status=400,
        headers={"x-acs-retry-after": "2500"},
        json={"code": "Throttling.User", "message": "too fast", "requestId": "r"},
    )
    with pytest.raises(NodePoolThrottled) as throttled:
        provider.describe("general")
    assert throttled.value.retry_after == 2.5
    responses.replace(
        responses.GET,
        POOL,
        status=400,
        json={"code": "Throttling.Api", "message": "slow", "requestId": "r"},
    )
    with pytest.raises(NodePoolThrottled):
        provider.describe("general")
    responses.replace(
        responses.GET,
        POOL,
        status=404,
        json={"code": "ErrorNodePoolNotFound", "message": "no", "requestId": "r"},
    )
    with pytest.raises(NodePoolNotFound):
        provider.describe("general")
    responses.replace(
        responses.GET,
        POOL,
        status=403,
        json={"code": "Forbidden.RAM", "message": "no", "requestId": "r"},
    )
    with pytest.raises(NodePoolError) as denied:
        provider.describe("general")
    assert denied.value.retryable is False
