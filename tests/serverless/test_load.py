"""A virtual node's quota is not room in the pools: the water level leaves it out."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.regions.load import compute_load


def _node(name: str, cpu: str, memory: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _pod(node: str | None, cpu: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"resources": {"requests": {"cpu": cpu}}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": "p"}, "spec": spec, "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    "labels",
    [
        {"type": "virtual-kubelet"},
        {"node.kubernetes.io/instance-type": "eklet"},
        {"eks.amazonaws.com/compute-type": "fargate"},
        {"cloud.google.com/compute-class": "meridian-burst"},
    ],
)
def test_serverless_nodes_do_not_count_in_the_water_level(labels: dict[str, str]) -> None:
    nodes = [_node("n1", "4", "16Gi"), _node("virtual", "1000", "4000Gi", labels)]
    pods = [_pod("n1", "4"), _pod("virtual", "2")]
    load = compute_load(nodes, pods)
    assert load.cpu_allocatable_millis == 4000
    assert load.water_level == 1.0
    assert load.nodes_total == 1
    assert (load.largest_free_cpu_millis, load.cpu_requested_millis) == (0, 4000)
