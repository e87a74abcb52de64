"""kubesim adapter: request shapes against httpx.MockTransport. The lead adds the
integration test against a running kubesim."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolThrottled,
)
from meridian.nodepools.registry import provider_for

POOLS = [
    {
        "name": "general",
        "min": 1,
        "max": 6,
        "desired": 3,
        "current": 3,
        "ready": 3,
        "cpu": "8",
        "memory": "32Gi",
        "nodes": ["aws-us-east-1-general-0", "aws-us-east-1-general-1", "aws-us-east-1-general-2"],
    },
    {
        "name": "gpu",
        "min": 0,
        "max": 2,
        "desired": 0,
        "current": 0,
        "ready": 0,
        "cpu": "16",
        "memory": "64Gi",
        "nodes": [],
    },
]


class Fake:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: dict[tuple[str, str], httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        if key in self.answers:
            return self.answers[key]
        if key == ("GET", "/sim/regions/aws-us-east-1/pools"):
            return httpx.Response(200, json=POOLS)
        if request.method in ("POST", "DELETE"):
            return httpx.Response(200, json={})
        return httpx.Response(404, text="no route")


def make(fake: Fake) -> Any:
    client = httpx.Client(base_url="http://kubesim:18099", transport=httpx.MockTransport(fake))
    return provider_for(
        "kubesim", {"name": "general", "region": "aws-us-east-1"}, http_client=client
    )


def test_describe_reads_the_pool_from_the_pools_list() -> None:
    fake = Fake()
    state = make(fake).describe("general")
    assert (state.min, state.desired, state.max, state.current) == (1, 3, 6, 3)
    assert state.autoscaler_enabled is False
    assert state.nodes[0] == "aws-us-east-1-general-0"
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", "/sim/regions/aws-us-east-1/pools")
    ]


def test_set_desired_posts_scale() -> None:
    fake = Fake()
    make(fake).set_desired("general", 5)
    post = fake.requests[-1]
    assert (post.method, post.url.path) == (
        "POST",
        "/sim/regions/aws-us-east-1/pools/general/scale",
    )
    assert json.loads(post.content) == {"desired": 5}


def test_set_desired_above_max_sends_nothing() -> None:
    fake = Fake()
    with pytest.raises(NodePoolInvalidRequest):
        make(fake).set_desired("general", 7)
    assert all(r.method == "GET" for r in fake.requests)


def test_remove_nodes_deletes_each_node_and_tolerates_gone() -> None:
    fake = Fake()
    fake.answers[("DELETE", "/sim/regions/aws-us-east-1/nodes/aws-us-east-1-general-1")] = (
        httpx.Response(404)
    )
    make(fake).remove_nodes("general", ["aws-us-east-1-general-2", "aws-us-east-1-general-1"])
    deletes = [r.url.path for r in fake.requests if r.method == "DELETE"]
    assert deletes == [
        "/sim/regions/aws-us-east-1/nodes/aws-us-east-1-general-1",
        "/sim/regions/aws-us-east-1/nodes/aws-us-east-1-general-2",
    ]


def test_unknown_pool_and_bounds() -> None:
    provider = make(Fake())
    with pytest.raises(NodePoolNotFound):
        provider.describe("nope")
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 0, 9)


def test_throttling_and_server_errors_are_mapped() -> None:
    fake = Fake()
    path = ("GET", "/sim/regions/aws-us-east-1/pools")
    fake.answers[path] = httpx.Response(429, headers={"Retry-After": "3"})
    provider = make(fake)
    with pytest.raises(NodePoolThrottled) as throttled:
        provider.describe("general")
    assert throttled.value.retry_after == 3.0
    fake.answers[path] = httpx.Response(503, text="outage")
    with pytest.raises(NodePoolError) as outage:
        provider.describe("general")
    assert outage.value.retryable is True and isinstance(outage.value.__cause__, httpx.HTTPError)
    fake.answers[path] = httpx.Response(400, text="bad")
    with pytest.raises(NodePoolError) as bad:
        provider.describe("general")
    assert bad.value.retryable is False


def test_connection_error_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(base_url="http://kubesim:1", transport=httpx.MockTransport(refuse))
    provider = provider_for("kubesim", {"region": "r"}, http_client=client)
    with pytest.raises(NodePoolError) as info:
        provider.describe("general")
    assert info.value.retryable is True
