"""Baidu CCE v2 adapter: request shapes over httpx.MockTransport, and the BCE v1
signature checked against the official SDK's signer (bce-python-sdk's
`baidubce.auth.bce_v1_signer`, which still imports even though its CCE module is gone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.bce_auth import BceCredentials, default_credentials, sign
from meridian.nodepools.registry import provider_for

NOW = datetime(2026, 3, 1, 8, 30, 0, tzinfo=UTC)
CREDS = BceCredentials("ak-test", "sk-test")
GROUP = "/v2/cluster/cce-1/instancegroup/cce-ig-1"
IPS = ["10.2.0.11", "10.2.0.12"]


def group(replicas: int = 2, autoscaler: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "instanceGroup": {
            "spec": {
                "replicas": replicas,
                "instanceGroupName": "general",
                "clusterAutoscalerSpec": autoscaler or {"enabled": False},
            },
            "status": {"readyReplicas": replicas},
        },
        "requestID": "r-1",
    }


def instances() -> dict[str, Any]:
    return {
        "page": {
            "pageNo": 1,
            "pageSize": 100,
            "totalCount": 2,
            "list": [
                {
                    "spec": {"cceInstanceID": f"cce-ins-{i}", "instanceName": f"node-{i}"},
                    "status": {"instancePhase": "running", "machine": {"vpcIP": ip}},
                }
                for i, ip in enumerate(IPS)
            ],
        }
    }


class Fake:
    def __init__(self, group_answer: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.group_answer = group_answer or httpx.Response(200, json=group())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path == GROUP:
            return self.group_answer
        if request.method == "GET" and request.url.path == f"{GROUP}/instances":
            return httpx.Response(200, json=instances())
        return httpx.Response(200, json={"requestID": "r-2"})


def make(fake: Fake) -> Any:
    client = httpx.Client(
        base_url="https://cce.bj.baidubce.com", transport=httpx.MockTransport(fake)
    )
    return provider_for(
        "cce-baidu",
        {
            "name": "general",
            "cluster_id": "cce-1",
            "instance_group_id": "cce-ig-1",
            "min": 1,
            "max": 5,
        },
        http_client=client,
        credentials=CREDS,
        clock=lambda: NOW,
    )


def test_signature_matches_the_official_sdk_signer() -> None:
    signer = pytest.importorskip("baidubce.auth.bce_v1_signer")
    from baidubce.auth.bce_credentials import BceCredentials as SdkCredentials

    headers = {
        "host": "cce.bj.baidubce.com",
        "x-bce-date": "2026-03-01T08:30:00Z",
        "content-type": "application/json",
    }
    params = {"pageNo": "1", "pageSize": "100"}
    ours = sign(CREDS, "GET", f"{GROUP}/instances", params, headers, NOW)
    theirs = signer.sign(
        SdkCredentials(b"ak-test", b"sk-test"),
        b"GET",
        f"{GROUP}/instances".encode(),
        {k.encode(): v.encode() for k, v in headers.items()},
        {k.encode(): v.encode() for k, v in params.items()},
        timestamp=int(NOW.timestamp()),
        headers_to_sign=[b"host", b"x-bce-date"],
    )
    assert ours == theirs.decode()


def test_describe_and_signed_headers() -> None:
    fake = Fake()
    state = make(fake).describe("general")
    assert (state.min, state.desired, state.max, state.current, state.nodes) == (1, 2, 5, 2, IPS)
    first = fake.requests[0]
    assert first.headers["authorization"].startswith(
        "bce-auth-v1/ak-test/2026-03-01T08:30:00Z/1800/host;x-bce-date/"
    )
    assert first.headers["x-bce-date"] == "2026-03-01T08:30:00Z"
    assert "sk-test" not in str(first.headers)


def test_set_desired_puts_replicas() -> None:
    fake = Fake()
    make(fake).set_desired("general", 4)
    put = fake.requests[-1]
    assert (put.method, put.url.path) == ("PUT", f"{GROUP}/replicas")
    assert json.loads(put.content) == {"replicas": 4}


def test_autoscaled_group_takes_bounds_only() -> None:
    fake = Fake(
        httpx.Response(200, json=group(2, {"enabled": True, "minReplicas": 1, "maxReplicas": 6}))
    )
    provider = make(fake)
    with pytest.raises(NodePoolOwnedByAutoscaler):
        provider.set_desired("general", 3)
    provider.set_bounds("general", 2, 8)
    put = fake.requests[-1]
    assert (put.method, put.url.path) == ("PUT", f"{GROUP}/autoscaler")
    assert json.loads(put.content) == {"enabled": True, "minReplicas": 2, "maxReplicas": 8}


def test_remove_nodes_scales_down_named_instances() -> None:
    fake = Fake()
    make(fake).remove_nodes("general", [IPS[1]])
    put = fake.requests[-1]
    assert (put.method, put.url.path) == ("PUT", f"{GROUP}/scaledown")
    assert json.loads(put.content) == {
        "instancesToBeRemoved": ["cce-ins-1"],
        "cleanPolicy": "Delete",
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, {"code": "RequestLimitExceeded", "message": "slow"}, NodePoolThrottled),
        (400, {"code": "TooManyRequests", "message": "slow"}, NodePoolThrottled),
        (404, {"code": "InstanceGroupNotFound", "message": "no"}, NodePoolNotFound),
        (500, {"code": "InternalError", "message": "x"}, NodePoolError),
    ],
)
def test_errors(status: int, body: dict[str, Any], expected: type[Exception]) -> None:
    provider = make(Fake(httpx.Response(status, json=body, headers={"Retry-After": "2"})))
    with pytest.raises(expected) as info:
        provider.describe("general")
    if expected is NodePoolThrottled:
        assert info.value.retry_after == 2.0  # type: ignore[attr-defined]


def test_default_credentials_from_cli_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BCE_ACCESS_KEY_ID", raising=False)
    (tmp_path / ".bce").mkdir()
    (tmp_path / ".bce" / "credentials").write_text("[Defaults]\nAk = ak-file\nSk = sk-file\n")
    creds = default_credentials(home=tmp_path)
    assert creds.access_key_id == "ak-file" and "sk-file" not in repr(creds)
    monkeypatch.setenv("BCE_ACCESS_KEY_ID", "ak-env")
    monkeypatch.setenv("BCE_SECRET_ACCESS_KEY", "sk-env")
    assert default_credentials(home=tmp_path).access_key_id == "ak-env"
