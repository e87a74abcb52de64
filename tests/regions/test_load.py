"""One load, one water level, one "pending": the health probe, the scaling loop,
placement and the API read a region the same way."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.placement import (
    FilterCode,
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
    place,
)
from meridian.regions.catalog import catalog_for
from meridian.regions.load import (
    RegionLoad,
    compute_load,
    is_pending,
    is_unschedulable,
    water_level,
)
from meridian.regions.models import ProbeSnapshot
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


def _place_in_region_with(load: RegionLoad) -> PlacementDecision:
    """SPEC's placement over one region "r" whose probe measured `load`."""
    snapshot = RegionSnapshot.model_validate(
        {"name": "r", "provider": "aws", "location": "us-east-1", **load.model_dump()}
    )
    return place(
        PlacementRequest.for_task("t", TaskSpec.model_validate(SPEC)),
        [snapshot],
        PlacementWeights(),
        catalog_for(),
    )


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
    decision = _place_in_region_with(load)
    assert decision.chosen is None
    assert [f.code for f in decision.filtered] == [code]


def slotted(name: str, pods: str | None = "3", **kwargs: Any) -> dict[str, Any]:
    """`node`, reporting `pods` pod slots (None: no `allocatable.pods` at all)."""
    made = node(name, **kwargs)
    if pods is not None:
        made["status"]["allocatable"]["pods"] = pods
    return made


def test_load_counts_the_pod_slots_of_schedulable_nodes_and_the_live_pods_holding_them() -> None:
    nodes = [
        slotted("a"),
        slotted("b"),
        slotted("d", cordoned=True),  # neither its slots nor its pods count
        slotted("e", pressure="DiskPressure"),
    ]
    pods = [
        pod("a", "1"),
        pod("a", "1", phase="Pending"),  # bound, pulling its image: holds a slot
        pod("a", "1", phase="Succeeded"),  # finished: holds no slot
        pod("b", "1", phase="Failed"),
        pod("d", "1"),
        pod(None, "1", phase="Pending"),  # not bound: pending, not on a slot
    ]
    load = compute_load(nodes, pods)
    assert (load.pods_allocatable, load.pods_live, load.pods_free) == (6, 2, 4)
    # A snapshot carries them to placement.
    snapshot = RegionSnapshot.model_validate(
        {"name": "r", "provider": "aws", "location": "us-east-1", **load.model_dump()}
    )
    assert (snapshot.pods_allocatable, snapshot.pods_live, snapshot.pods_free) == (6, 2, 4)


def test_a_node_whose_slots_are_all_held_is_not_the_largest_free_node() -> None:
    # Node a has the most free CPU but no slot left; one pod can only get b's room.
    nodes = [slotted("a", pods="2", cpu="16"), slotted("b", pods="110", cpu="8")]
    pods = [pod("a", "1"), pod("a", "1"), pod("b", "4")]
    load = compute_load(nodes, pods)
    assert load.largest_free_cpu_millis == 4000
    assert load.cpu_allocatable_millis == 24000  # its room still counts in the water level
    assert (load.pods_allocatable, load.pods_live, load.pods_free) == (112, 3, 109)


def test_a_node_that_does_not_report_its_slots_makes_the_regions_unknown() -> None:
    # It may have room: the region is not read as full from the other nodes alone.
    nodes = [slotted("a", pods="1"), slotted("b", pods=None)]
    load = compute_load(nodes, [pod("a", "1"), pod("b", "1")])
    assert load.pods_allocatable == 0 and load.pods_free is None
    assert load.pods_live == 2
    assert load.largest_free_cpu_millis == 7000  # b's; a has no slot free
    # A quantity it cannot read counts as not reported.
    assert compute_load([slotted("a", pods="lots")], []).pods_free is None


def test_snapshots_from_before_slots_were_counted_decode_as_unknown() -> None:
    old = {"nodes_total": 2, "nodes_ready": 2, "cpu_allocatable_millis": 8000}
    load = RegionLoad.model_validate(old)
    assert (load.pods_allocatable, load.pods_live, load.pods_free) == (0, 0, None)
    probe = ProbeSnapshot.model_validate(old)
    assert probe.load.pods_free is None


def test_placement_turns_away_a_region_whose_pod_slots_are_all_taken() -> None:
    nodes = [slotted("a", pods="2"), slotted("b", pods="1")]
    load = compute_load(nodes, [pod("a", "1"), pod("a", "1"), pod("b", "1")])
    assert load.pods_free == 0
    decision = _place_in_region_with(load)
    assert decision.chosen is None
    assert [(f.code, f.reason) for f in decision.filtered] == [
        (FilterCode.CAPACITY, "no pod slot free: 3 of 3 pods")
    ]
    assert decision.reason == "no healthy region with a pod slot free: r (3 of 3 pods)"
