"""One load, one water level, one "pending": the health probe, the scaling loop,
placement and the API read a region the same way."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.placement import FilterCode, PlacementRequest, RegionSnapshot, place
from meridian.regions.catalog import catalog_for
from meridian.regions.load import compute_load, is_pending, is_unschedulable, water_level
from meridian.scaling.observe import observe
from meridian.scaling.water import load_of
from meridian.settings import PlacementWeights
from meridian.tasks.spec import TaskSpec

GI = 1 << 30
SPEC = {
    "name": "etl",
    "business_unit": "ads",
    "data_source": {"provider": "aws", "region": "us-east-1"},
    "job": {"image": "busybox"},
}


def node(
    name: str,
    cpu: str = "8",
    ready: bool = True,
    cordoned: bool = False,
    pressure: str | None = None,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if pressure:
        conditions.append({"type": pressure, "status": "True"})
    return {
        "metadata": {"name": name},
        "spec": {"unschedulable": cordoned},
        "status": {"allocatable": {"cpu": cpu, "memory": "32Gi"}, "conditions": conditions},
    }


def pod(
    node_name: str | None, cpu: str, phase: str = "Running", unschedulable: bool = False
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if unschedulable:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        ]
    return {
        "metadata": {"name": f"p-{node_name}-{cpu}-{phase}", "namespace": "ns"},
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}],
        },
        "status": status,
    }


NODES = [
    node("a"),
    node("b"),
    node("c", ready=False),
    node("d", cordoned=True),
    node("e", pressure="DiskPressure"),
]
PODS = [
    pod("a", "6"),
    pod("b", "1"),
    pod("b", "4", phase="Succeeded"),
    pod("d", "3"),  # on a cordoned node: neither its room nor its load counts
    pod("b", "1", phase="Pending"),  # bound, pulling its image: holds b's room
    pod(None, "2", phase="Pending"),  # not scheduled yet
    pod(None, "16", phase="Pending", unschedulable=True),  # no node has room
]


def test_load_counts_only_schedulable_nodes_and_live_pods() -> None:
    load = compute_load(NODES, PODS)
    assert (load.nodes_total, load.nodes_ready, load.nodes_cordoned) == (5, 4, 1)
    assert load.cpu_allocatable_millis == 16000  # a and b
    assert load.cpu_requested_millis == 8000
    assert load.largest_free_cpu_millis == 6000  # node b
    assert load.pending_pods == 2
    assert load.water_level == pytest.approx(8 / 16)
    assert load.cpu_free_millis == 8000 and load.memory_free_bytes == 64 * GI - 3 * GI


def test_pending_is_not_yet_scheduled_and_demand_is_the_unschedulable_part() -> None:
    assert [is_pending(p) for p in PODS] == [False] * 5 + [True, True]
    assert [is_unschedulable(p) for p in PODS] == [False] * 6 + [True]
    # A finished pod without a node is neither.
    assert not is_pending(pod(None, "1", phase="Failed"))
    observation, demand = observe("r", 0.0, NODES, PODS, [])
    assert [r.cpu for r in demand] == [16000]
    assert compute_load(NODES, PODS).pending_pods == 2


def test_probe_scaling_and_placement_read_the_same_water_level() -> None:
    load = compute_load(NODES, PODS)
    observation, _ = observe("r", 0.0, NODES, PODS, [])
    snapshot = RegionSnapshot.model_validate(
        {"name": "r", "provider": "aws", "location": "us-east-1", **load.model_dump()}
    )
    assert load_of(observation.nodes).level == load.water_level == snapshot.water_level


@pytest.mark.parametrize(
    ("nodes", "pods", "level"),
    [
        # A pool scaled to zero with nothing asked of it is empty, not full: the scaling
        # loop must not grow it, and placement turns it away for having no Ready node.
        ([], [], 0.0),
        # Every node cordoned: no room and no load counted, so 0.0 too; placement turns
        # it away because no node has room (largest free is 0).
        ([node("a", cordoned=True)], [pod("a", "6")], 0.0),
        ([node("a", pressure="MemoryPressure")], [pod("a", "6")], 0.0),
        # Overcommitted reads above 1.0: how far over is worth seeing.
        ([node("a", cpu="4")], [pod("a", "6")], 1.5),
    ],
)
def test_water_level_edges(nodes: list[dict[str, Any]], pods: list[Any], level: float) -> None:
    load = compute_load(nodes, pods)
    observation, _ = observe("r", 0.0, nodes, pods, [])
    assert load.water_level == pytest.approx(level)
    assert load_of(observation.nodes).level == pytest.approx(level)


def test_water_level_per_resource_edges() -> None:
    assert water_level(0, 0, 0, 0) == 0.0
    # Something asked of a resource there is none of: full.
    assert water_level(500, 0, 0, 8 * GI) == 1.0
    # The scarcer resource decides.
    assert water_level(1000, 6 * GI, 4000, 8 * GI) == 0.75


@pytest.mark.parametrize(
    ("nodes", "code"),
    [
        ([], FilterCode.NO_NODES),
        # Ready, but cordoned or under pressure: no node takes pods.
        ([node("a", cordoned=True), node("b", pressure="PIDPressure")], FilterCode.CAPACITY),
    ],
)
def test_placement_turns_away_a_region_without_room_whatever_its_water_level(
    nodes: list[dict[str, Any]], code: FilterCode
) -> None:
    load = compute_load(nodes, [])
    assert load.water_level == 0.0
    snapshot = RegionSnapshot.model_validate(
        {"name": "r", "provider": "aws", "location": "us-east-1", **load.model_dump()}
    )
    decision = place(
        PlacementRequest.for_task("t", TaskSpec.model_validate(SPEC)),
        [snapshot],
        PlacementWeights(),
        catalog_for(),
    )
    assert decision.chosen is None
    assert [f.code for f in decision.filtered] == [code]
