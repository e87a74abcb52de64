"""Pod and node addresses: unique within one simulator process, across all its clusters."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from kubesim.config import parse_config
from kubesim.ipam import IpAllocator
from kubesim.resources import NODES, PODS
from kubesim.server import Simulator
from kubesim.util import new_uid, now_iso

TWO_REGIONS: dict[str, Any] = {
    "defaults": {"job_duration": "10s"},
    "regions": [
        {"name": "aws-us-east-1", "node_pools": [{"name": "general", "count": 2}]},
        {"name": "gcp-europe-west1", "node_pools": [{"name": "general", "count": 2}]},
    ],
}


def test_pod_ips_are_unique_loopback_addresses_outside_127_0() -> None:
    ips = IpAllocator()
    handed = [ips.pod_ip() for _ in range(70_000)]  # crosses a /16 boundary
    assert len(set(handed)) == len(handed)
    for ip in handed:
        address = ipaddress.IPv4Address(ip)
        assert address.is_loopback
        first, second, _, last = (int(part) for part in ip.split("."))
        assert second != 0 and 1 <= last <= 254
    assert handed[0] == "127.1.0.1"


def test_pod_ip_block_picks_the_second_octet() -> None:
    assert IpAllocator(pod_block=18100).pod_ip() == f"127.{1 + 18100 % 254}.0.1"
    assert IpAllocator(pod_block=254).pod_ip() == "127.1.0.1"


def test_node_ips_live_in_127_255() -> None:
    ips = IpAllocator()
    handed = [ips.node_ip() for _ in range(600)]
    assert len(set(handed)) == len(handed)
    assert all(ip.startswith("127.255.") for ip in handed)
    assert handed[0] == "127.255.0.2"


def test_a_reserved_pod_ip_is_never_handed_out() -> None:
    ips = IpAllocator()
    ips.reserve_pod_ip("127.1.3.7")
    handed = {ips.pod_ip() for _ in range(2000)}
    assert "127.1.3.7" not in handed
    assert ips.pod_ip() != "127.1.3.7"
    # Addresses kubesim never hands out are ignored.
    for foreign in ("10.0.0.1", "127.0.0.1", "127.1.0.255", "not-an-ip", ""):
        ips.reserve_pod_ip(foreign)


def test_a_reserved_node_ip_is_never_handed_out() -> None:
    ips = IpAllocator()
    for reserved in ("127.255.0.9", "127.255.1.254"):
        ips.reserve_node_ip(reserved)
    handed = [ips.node_ip() for _ in range(600)]
    assert "127.255.0.9" not in handed and "127.255.1.254" not in handed
    assert handed[0] == "127.255.2.1"
    for foreign in ("127.1.0.1", "127.255.0.0", "x.y"):
        ips.reserve_node_ip(foreign)


def test_allocators_are_independent() -> None:
    a, b = IpAllocator(), IpAllocator()
    assert a.pod_ip() == b.pod_ip()  # only one simulator per allocator: no global state


def _pod(name: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": new_uid(),
            "creationTimestamp": now_iso(),
        },
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        "status": {"phase": "Pending"},
    }


def _node(name: str, ip: str) -> dict[str, Any]:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": now_iso()},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": ip}],
        },
    }


async def _running_ip(sim: Simulator, region: str, name: str) -> str:
    store = sim.clusters[region].store
    for _ in range(200):
        pod = store.get(PODS.name, "default", name)
        ip = ((pod or {}).get("status") or {}).get("podIP")
        if ip:
            return str(ip)
        await asyncio.sleep(0.01)
    raise AssertionError(f"{region}/{name} never got a pod IP")


def _node_ips(sim: Simulator) -> list[str]:
    return [
        address["address"]
        for cluster in sim.clusters.values()
        for entry in cluster.store[NODES.name].entries()
        for address in entry.obj["status"]["addresses"]
        if address["type"] == "InternalIP"
    ]


@pytest.fixture
async def sim() -> Any:
    sim = Simulator(parse_config(TWO_REGIONS), base_port=18100)
    for cluster in sim.clusters.values():
        cluster.bootstrap()
    yield sim
    for cluster in sim.clusters.values():
        await cluster.close()


async def test_two_clusters_of_one_simulator_never_share_an_ip(sim: Simulator) -> None:
    node_ips = _node_ips(sim)
    assert len(node_ips) == 4 and len(set(node_ips)) == 4
    pod_ips = []
    for region in sim.clusters:
        for i in range(3):
            sim.clusters[region].store.create(PODS.name, _pod(f"p{i}"))
    for region in sim.clusters:
        for i in range(3):
            pod_ips.append(await _running_ip(sim, region, f"p{i}"))
    assert len(set(pod_ips)) == 6
    # The simulator's pod addresses sit in the block its base port picks.
    assert all(ip.startswith(f"127.{1 + 18100 % 254}.") for ip in pod_ips)


async def test_ips_restored_into_one_cluster_are_not_handed_out_in_another() -> None:
    # The first addresses a fresh simulator would hand out, held by restored objects.
    pod_ip, node_ip = f"127.{1 + 18100 % 254}.0.2", "127.255.0.3"
    sim = Simulator(parse_config(TWO_REGIONS), base_port=18100)
    first, second = sim.clusters.values()
    node = _node("restored-node", node_ip)
    pod = _pod("restored")
    pod["spec"]["nodeName"] = "restored-node"
    pod["status"] = {"phase": "Succeeded", "podIP": pod_ip}
    try:
        first.restore({"objects": {NODES.name: [node], PODS.name: [pod]}}, resume_rv=1)
        second.bootstrap()
        node_ips = _node_ips(sim)
        assert len(node_ips) == 5 and len(set(node_ips)) == 5
        for i in range(3):
            second.store.create(PODS.name, _pod(f"p{i}"))
        pod_ips = [await _running_ip(sim, second.name, f"p{i}") for i in range(3)]
        assert pod_ip not in pod_ips
    finally:
        for cluster in sim.clusters.values():
            await cluster.close()
