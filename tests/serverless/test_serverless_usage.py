"""The probe reports what runs on a region's serverless node: pods, billed sizes, burst
pods the cloud refused (quota exhausted), and billed size × run time for the cost."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.regions.config import load_regions
from meridian.regions.load import compute_load, serverless_cost
from tests.placement.helpers import DEV

VK = {"type": "virtual-kubelet", "alibabacloud.com/virtual-node": "true"}


def _node(name: str, labels: dict[str, str], ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "allocatable": {"cpu": "200", "memory": "800Gi"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _pod(node: str | None, *, billed: tuple[str, str] | None = None, **status: Any) -> Any:
    annotations = {}
    if billed:
        annotations = {"meridian.io/billed-cpu": billed[0], "meridian.io/billed-memory": billed[1]}
    spec: dict[str, Any] = {
        "containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]
    }
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": "p",
            "labels": {"meridian.io/capacity": "serverless"},
            "annotations": annotations,
        },
        "spec": spec,
        "status": {"phase": "Running", **status},
    }


def test_usage_counts_billed_sizes_and_run_time() -> None:
    nodes = [_node("n1", {}), _node("vk", VK)]
    start = "2026-01-01T00:00:00Z"
    pods = [
        _pod("vk", billed=("1", "2Gi"), startTime=start),
        _pod("vk", startTime=start),  # no annotations: its requests
        _pod("n1"),
    ]
    now = 1767225600.0 + 3600  # an hour after `start`
    usage = compute_load(nodes, pods, now=now).serverless
    assert usage is not None
    assert (usage.pods, usage.cpu_millis, usage.memory_bytes) == (2, 1500, 3 * 1024**3)
    assert usage.cpu_core_seconds == pytest.approx(1.5 * 3600)
    assert usage.memory_gib_seconds == pytest.approx(3 * 3600)
    eci = next(r for r in load_regions(DEV).regions if r.serverless and r.serverless.kind == "eci")
    assert eci.serverless is not None
    assert serverless_cost(usage, eci.serverless) == pytest.approx(1.5 * 0.1764 + 3 * 0.0263)


def test_burst_pods_refused_by_the_cloud_are_waiting() -> None:
    refused = _pod(
        None,
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    )
    refused["status"]["phase"] = "Pending"
    usage = compute_load([_node("vk", VK, ready=False)], [refused]).serverless
    assert usage is not None
    assert (usage.ready, usage.waiting_pods, usage.pods) == (False, 1, 0)


def test_a_region_without_serverless_nodes_reports_none() -> None:
    assert compute_load([_node("n1", {})], []).serverless is None
