"""Control API endpoints not covered elsewhere: regions, network probes, stats."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kubernetes import client

from kubesim.control import KubesimControl, KubesimControlError
from kubesim.process import KubesimProcess

from .conftest import CORE, REGIONS, RESIDENT


def test_regions_describe_every_region(control: KubesimControl, kubesim: KubesimProcess) -> None:
    regions = control.regions()
    assert list(regions) == [r["name"] for r in REGIONS["regions"]]
    state = regions[CORE]
    assert state["url"] == kubesim.region_urls[CORE]
    assert state["outage"] is False and state["nodes"] == 3 and state["ready_nodes"] == 3
    assert state["provider"] == "aws" and state["location"] == "us-east-1"


def test_network_paths_from_file_and_injected(control: KubesimControl) -> None:
    net = control.network(CORE)
    assert net["region"] == CORE
    assert {"target": "azure:eastus", "rtt_ms": 4.0, "loss": 0.0} in net["paths"]
    updated = control.set_network_path(CORE, "azure:eastus", rtt_ms=80.0, loss=0.05)
    assert {"target": "azure:eastus", "rtt_ms": 80.0, "loss": 0.05} in updated["paths"]
    assert len([p for p in updated["paths"] if p["target"] == "azure:eastus"]) == 1
    control.set_network_path(CORE, "azure:eastus", rtt_ms=4.0, loss=0.0)
    assert control.network(RESIDENT)["paths"] == []


def test_stats_count_kubernetes_requests(control: KubesimControl, api_clients: Any) -> None:
    core = client.CoreV1Api(api_clients(RESIDENT))
    before = control.stats(RESIDENT)
    core.list_namespace()
    core.list_namespace()
    core.read_namespace("default")
    after = control.stats(RESIDENT)
    assert (
        after["requests"]["list"]["namespaces"]
        - before["requests"].get("list", {}).get("namespaces", 0)
        == 2
    )  # noqa: E501
    assert after["requests"]["get"]["namespaces"] >= 1
    assert after["requests_total"] >= before["requests_total"] + 3
    assert after["objects"]["nodes"] == 2 and after["objects"]["namespaces"] >= 2


def test_bad_bodies_are_400(control: KubesimControl) -> None:
    with pytest.raises(KubesimControlError) as err:
        control.api_errors(CORE, rate=2.0)
    assert err.value.status == 400
    with pytest.raises(KubesimControlError) as err:
        control.set_pod_status(CORE, "default", "nope", "sleepy")
    assert err.value.status == 400
    with pytest.raises(KubesimControlError) as err:
        control.set_node_ready(CORE, "no-such-node", True)
    assert err.value.status == 404


def _post(kubesim: KubesimProcess, method: str, path: str, body: Any) -> httpx.Response:
    return httpx.request(method, f"{kubesim.control_url}{path}", json=body, timeout=10)


def test_unknown_or_missing_body_keys_are_400(
    control: KubesimControl, kubesim: KubesimProcess
) -> None:
    base = f"/sim/regions/{RESIDENT}"
    # A misspelt field used to be taken for the default: rate 0 and latency 0 with a 200.
    answer = _post(kubesim, "POST", f"{base}/api-errors", {"fraction": 0.5})
    assert answer.status_code == 400
    error = answer.json()
    assert "'fraction'" in error["error"] and "'rate'" in error["error"]
    assert "'codes' (optional)" in error["error"] and "'retry_after' (optional)" in error["error"]
    assert error["unknown"] == ["fraction"] and error["missing"] == ["rate"]
    assert error["required"] == ["rate"] and error["optional"] == ["codes", "retry_after"]
    answer = _post(kubesim, "POST", f"{base}/api-errors", {"rate": 0.5, "code": [500]})
    assert answer.status_code == 400 and answer.json()["unknown"] == ["code"]
    assert control.region(RESIDENT)["api_errors"] is None
    [pool] = control.pools(RESIDENT)
    node = pool["nodes"][0]
    cases: list[tuple[str, str, Any, list[str], list[str]]] = [
        ("POST", "/latency", {}, [], ["ms"]),
        ("POST", "/latency", {"latency_ms": 300}, ["latency_ms"], ["ms"]),
        ("POST", "/latency", {"ms": 300, "jitter": 5}, ["jitter"], []),
        ("DELETE", "/latency", {"ms": 300}, ["ms"], []),
        ("DELETE", "/api-errors", {"rate": 0.5}, ["rate"], []),
        ("POST", "/outage", {"seconds": 5}, ["seconds"], []),
        ("DELETE", "/outage", {"now": True}, ["now"], []),
        ("POST", "/drop-watches", {"resource": "pods"}, ["resource"], []),
        ("POST", f"/nodes/{node}/ready", {"Ready": False}, ["Ready"], ["ready"]),
        ("POST", f"/nodes/{node}/ready", {"ready": False, "taint": 1}, ["taint"], []),
        ("DELETE", f"/nodes/{node}", {"drain": True}, ["drain"], []),
        ("POST", "/pods/default/some-pod/status", {"status": "failing"}, ["status"], ["state"]),
        ("POST", "/pools/general/scale", {"replicas": 5}, ["replicas"], ["desired"]),
        ("POST", "/pools/general/scale", {"desired": 5, "delay": 0}, ["delay"], []),
    ]
    for method, path, body, unknown, missing in cases:
        answer = _post(kubesim, method, base + path, body)
        assert answer.status_code == 400, (method, path, answer.text)
        error = answer.json()
        assert (error["unknown"], error["missing"]) == (unknown, missing), (path, error)
        for key in [*unknown, *missing]:
            assert repr(key) in error["error"]
    # Network paths cannot be removed, so these use CORE's path from the regions file.
    path = {"target": "aws:us-east-1", "rtt_ms": 1.0, "loss": 0.0}
    for body, unknown, missing in [
        ({"target": "aws:us-east-1", "rtt": 900.0}, ["rtt"], []),
        ({"rtt_ms": 900.0, "loss": 0.5}, [], ["target"]),
    ]:
        answer = _post(kubesim, "POST", f"/sim/regions/{CORE}/network", body)
        assert answer.status_code == 400, answer.text
        assert (answer.json()["unknown"], answer.json()["missing"]) == (unknown, missing)
    assert path in control.network(CORE)["paths"]
    # None of the refused requests took effect.
    state = control.region(RESIDENT)
    assert state["latency_ms"] == 0 and state["outage"] is False and state["api_errors"] is None
    assert state["nodes"] == 2 and state["ready_nodes"] == 2
    assert [_sized(p) for p in control.pools(RESIDENT)] == [_sized(pool)]
    # Every documented field is still accepted, and so are empty bodies where none is read.
    assert (
        _post(
            kubesim, "POST", f"{base}/api-errors", {"rate": 0.0, "codes": [503], "retry_after": 2}
        ).status_code
        == 200
    )
    assert _post(kubesim, "DELETE", f"{base}/api-errors", None).status_code == 200
    assert _post(kubesim, "POST", f"{base}/latency", {"ms": 0}).status_code == 200
    assert _post(kubesim, "DELETE", f"{base}/latency", {}).status_code == 200
    assert _post(kubesim, "POST", f"/sim/regions/{CORE}/network", path).status_code == 200
    assert (
        _post(
            kubesim,
            "POST",
            f"{base}/pools/general/scale",
            {"desired": pool["desired"], "provisioning_delay_seconds": 0},
        ).status_code
        == 200
    )
    assert _post(kubesim, "POST", f"{base}/nodes/{node}/ready", {"ready": True}).status_code == 200
    assert [_sized(p) for p in control.pools(RESIDENT)] == [_sized(pool)]


async def test_async_control_client(kubesim: KubesimProcess) -> None:
    from kubesim.control import AsyncKubesimControl

    async with AsyncKubesimControl(kubesim.control_url) as ctl:
        assert CORE in await ctl.regions()
        assert (await ctl.latency(CORE, 0))["latency_ms"] == 0
        assert (await ctl.pools(CORE))[0]["name"] == "general"
        assert (await ctl.network(CORE))["region"] == CORE


def _sized(pool: dict[str, Any]) -> dict[str, Any]:
    """A pool's size and nodes, without its ledger (node-seconds grow as time passes)."""
    return {k: v for k, v in pool.items() if k not in ("node_seconds", "cost")}
