"""Placement's burst rule: a region whose nodes are full but whose serverless room holds
the task is a candidate for `auto` and `serverless` tasks, priced and explained."""

from __future__ import annotations

from typing import Any

import pytest

from meridian.placement import FilterCode, PlacementRequest, RegionSnapshot, place
from meridian.placement.types import ServerlessRoom
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.load import RegionLoad, ServerlessUsage
from meridian.regions.view import pool_facts
from meridian.settings import BurstSettings, PlacementWeights
from meridian.tasks.spec import Capacity, TaskSpec
from tests.placement.helpers import DEV, request, snapshots_of

AWS = "aws-us-east-1"  # fargate, pools max 8 nodes, boot 90 s
ALI = "alibaba-cn-hangzhou"  # eci, CNY
WEIGHTS = PlacementWeights()
CATALOG = Catalog.default()


def _snapshots(
    full: str,
    *,
    nodes_total: int = 3,
    usage: ServerlessUsage | None = None,
) -> list[RegionSnapshot]:
    """dev.yaml's regions, with `full`'s nodes fully requested and its serverless
    capacity seen by the probe (`usage`: ready and empty unless given)."""
    regions = {r.name: r for r in load_regions(DEV).regions}
    out = []
    for snap in snapshots_of(DEV):
        config = regions[snap.name]
        changes: dict[str, Any] = {}
        if config.serverless is not None:
            seen = usage if usage is not None else ServerlessUsage(nodes=1, ready=True)
            changes["serverless"] = ServerlessRoom(config=config.serverless, usage=seen)
        load = RegionLoad(nodes_total=snap.nodes_total)
        if snap.name == full:
            changes.update(
                largest_free_cpu_millis=0,
                largest_free_memory_bytes=0,
                cpu_requested_millis=snap.cpu_allocatable_millis,
                memory_requested_bytes=snap.memory_allocatable_bytes,
                pending_pods=4,
                nodes_total=nodes_total,
            )
            load = RegionLoad(nodes_total=nodes_total)
        changes["pools"] = pool_facts(config, load)
        out.append(snap.model_copy(update=changes))
    return out


def _pinned(region: str, capacity: Capacity = Capacity.AUTO, **kw: Any) -> PlacementRequest:
    req = request(region=region, cpu="1", memory="2Gi", **kw)
    return req.model_copy(update={"capacity": capacity})


def _place(
    req: PlacementRequest, snaps: list[RegionSnapshot], burst: BurstSettings | None = None
) -> Any:
    return place(req, snaps, WEIGHTS, CATALOG, burst=burst or BurstSettings())


def test_full_nodes_at_their_ceiling_burst_to_eci_with_its_cost() -> None:
    snaps = _snapshots(ALI, nodes_total=8)
    decision = _place(_pinned(ALI), snaps)
    assert decision.chosen == ALI
    best = decision.candidates[0]
    assert best.burst is not None
    assert best.burst.kind.value == "eci"
    assert (best.burst.billed.cpu, best.burst.billed.memory) == ("1", "2Gi")
    # ECI Hangzhou defaults: 0.1764 per vCPU-hour + 0.0263 per GiB-hour.
    assert best.burst.cost_per_hour == pytest.approx(0.1764 + 2 * 0.0263)
    assert "would burst to serverless (eci), est. ¥0.2290/h" in decision.reason
    assert "pools are at their ceiling" in decision.reason
    assert "waiting demand 4 pod(s)" in decision.reason


def test_nodes_that_boot_slower_than_the_wait_burst_and_faster_ones_are_awaited() -> None:
    snaps = _snapshots(AWS)  # 3 of 8 nodes: the pool can grow, in 90 s
    burst = _place(_pinned(AWS), snaps, BurstSettings(max_wait_for_nodes_seconds=60))
    assert burst.chosen == AWS
    assert "would burst to serverless (fargate), est. $" in burst.reason
    assert "takes 90s to boot, longer than the 60s" in burst.reason

    wait = _place(_pinned(AWS), snaps, BurstSettings(max_wait_for_nodes_seconds=120))
    assert wait.chosen is None
    (aws,) = [f for f in wait.filtered if f.region == AWS]
    assert aws.code is FilterCode.SATURATED
    assert "would wait for nodes: a new node boots in 90s, within the 120s" in aws.reason


def test_the_control_loops_advisory_bursts_what_nodes_would_wait_for() -> None:
    # Nodes boot within the wait, so placement alone waits for them; the region control
    # loop saw otherwise (the pool that would really grow is slow, or at its bound) and
    # its advisory stands: the task bursts, the explanation says whose call it was, and
    # the decision's fingerprint changes so a waiting task is placed again.
    snaps = _snapshots(AWS)
    settings = BurstSettings(max_wait_for_nodes_seconds=120)
    waiting = _place(_pinned(AWS), snaps, settings)
    assert waiting.chosen is None
    advised = [
        s.model_copy(update={"burst_advised": True, "burst_advice": "every pool is at its ceiling"})
        if s.name == AWS
        else s
        for s in snaps
    ]
    burst = _place(_pinned(AWS), advised, settings)
    assert burst.chosen == AWS and burst.candidates[0].burst is not None
    assert "the region control loop advises bursting: every pool is at its ceiling" in burst.reason
    assert burst.snapshot_fingerprint != waiting.snapshot_fingerprint
    # The advisory never takes a task off nodes that have room for it.
    roomy = [s.model_copy(update={"burst_advised": True}) for s in _snapshots("none")]
    assert _place(_pinned(AWS), roomy, settings).candidates[0].burst is None


@pytest.mark.parametrize(
    "usage, why",
    [
        (ServerlessUsage(nodes=1, ready=True, waiting_pods=2), "quota exhausted"),
        (ServerlessUsage(nodes=1, ready=True, pods=200), "quota full: 200 of 200 pods"),
        (ServerlessUsage(nodes=1, ready=False), "virtual node NotReady"),
        (ServerlessUsage(), "not seen by the probe"),
    ],
)
def test_no_serverless_room_is_no_candidate(usage: ServerlessUsage, why: str) -> None:
    snaps = _snapshots(AWS, nodes_total=8, usage=usage)
    decision = _place(_pinned(AWS), snaps)
    assert decision.chosen is None
    assert why in decision.reason


def test_a_resident_task_under_auto_stays_on_nodes() -> None:
    spec = TaskSpec.model_validate(
        {
            "name": "svc",
            "business_unit": "bu",
            "kind": "resident",
            "data_source": {"provider": "alibaba", "region": "cn-hangzhou"},
            "job": {"image": "busybox", "resources": {"cpu": "1", "memory": "2Gi"}},
            "placement": {"region": ALI},
        }
    )
    req = PlacementRequest.for_task("t-1", spec)
    assert req.capacity is Capacity.NODES
    decision = _place(req, _snapshots(ALI, nodes_total=8))
    assert decision.chosen is None
    assert "serverless" not in decision.reason


def test_nodes_capacity_never_bursts() -> None:
    decision = _place(_pinned(ALI, Capacity.NODES), _snapshots(ALI, nodes_total=8))
    assert decision.chosen is None
    assert "burst" not in decision.reason


def test_serverless_capacity_bursts_even_with_room_on_nodes() -> None:
    snaps = _snapshots("none")
    decision = _place(_pinned(AWS, Capacity.SERVERLESS), snaps)
    assert decision.chosen == AWS
    assert decision.candidates[0].burst is not None
    assert "the task asks for serverless capacity" in decision.reason


def test_serverless_capacity_skips_regions_without_it() -> None:
    decision = _place(_pinned("azure-eastus", Capacity.SERVERLESS), _snapshots("none"))
    assert decision.chosen is None
    (azure,) = [f for f in decision.filtered if f.region == "azure-eastus"]
    assert (azure.code, azure.reason) == (FilterCode.CONSTRAINT, "declares no serverless capacity")


def test_the_cost_term_lowers_a_burst_score_by_its_weight() -> None:
    snaps = _snapshots(ALI, nodes_total=8)
    free = _place(_pinned(ALI), snaps, BurstSettings(cost_weight=0.0)).candidates[0]
    priced = _place(_pinned(ALI), snaps, BurstSettings(cost_weight=0.5)).candidates[0]
    assert free.cost == 0.0
    # ECI's ¥0.229/h against the node share (1/8 CPU, 2/32 memory of a ¥2.1/h node).
    share = 2.1 / 8
    assert priced.cost == pytest.approx(0.5 * 0.229 / (0.229 + share), rel=1e-3)
    assert priced.total == pytest.approx(free.total - priced.cost)


def test_a_task_that_fits_on_nodes_does_not_burst() -> None:
    decision = _place(_pinned(ALI), _snapshots("none"))
    assert decision.chosen == ALI
    assert decision.candidates[0].burst is None
    assert "burst" not in decision.reason
