"""Placement counts what it placed since the last probe (issue 14): tasks placed between
two probes fill the nodes' free room, then burst (`auto`) or go elsewhere, and their
reservations end once a probe that can have counted their pods arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meridian.placement import (
    FilterCode,
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
    place,
)
from meridian.placement.reservations import (
    SETTLE_SECONDS,
    Reservation,
    Reservations,
    max_age_for,
    with_reservations,
)
from meridian.placement.types import ServerlessRoom
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.load import RegionLoad, ServerlessUsage
from meridian.regions.view import pool_facts
from meridian.settings import BurstSettings, FailoverSettings, PlacementWeights
from meridian.tasks.spec import Capacity, Resources
from tests.placement.helpers import DEV, request, snapshots_of

AWS = "aws-us-east-1"  # 3 nodes of 8 CPU, pools boot in 90 s; Fargate declared
AZURE = "azure-eastus"  # next to AWS's data, no serverless
PROBED = datetime(2026, 12, 7, 3, 0, 0, tzinfo=UTC)
GIB = 1 << 30
BURST = BurstSettings(max_wait_for_nodes_seconds=60)


def _snapshots(
    free_cpu: int = 8, *, probed: datetime = PROBED, **fargate: Any
) -> list[RegionSnapshot]:
    """dev.yaml's regions as probed at `probed`; AWS's nodes have `free_cpu` CPU free in
    all, at most 4 on one node, and its Fargate capacity is Ready (`fargate`: config
    overrides, e.g. max_pods)."""
    regions = {r.name: r for r in load_regions(DEV).regions}
    out = []
    for snap in snapshots_of(DEV):
        changes: dict[str, Any] = {"observed_at": probed}
        config = regions[snap.name]
        if snap.name == AWS:
            assert config.serverless is not None
            changes.update(
                cpu_requested_millis=snap.cpu_allocatable_millis - free_cpu * 1000,
                largest_free_cpu_millis=min(4, free_cpu) * 1000,
                serverless=ServerlessRoom(
                    config=config.serverless.model_copy(update=fargate),
                    usage=ServerlessUsage(nodes=1, ready=True),
                ),
                pools=pool_facts(config, RegionLoad(nodes_total=snap.nodes_total)),
            )
        out.append(snap.model_copy(update=changes))
    return out


def _task(n: int, capacity: Capacity = Capacity.AUTO, **constraints: Any) -> PlacementRequest:
    req = request(data="aws:us-east-1", cpu="1", memory="2Gi", **constraints)
    return req.model_copy(update={"task_id": f"t-{n}", "capacity": capacity})


def _wave(
    ledger: Reservations,
    snaps: list[RegionSnapshot],
    count: int,
    at: datetime,
    capacity: Capacity = Capacity.AUTO,
    first: int = 0,
    **constraints: Any,
) -> list[PlacementDecision]:
    return [
        ledger.place(
            _task(first + n, capacity, **constraints),
            snaps,
            PlacementWeights(),
            Catalog.default(),
            at=at,
            burst=BURST,
            # Above any water level the nodes' room allows: room alone decides here.
            water_ceiling=1.01,
        )
        for n in range(count)
    ]


def _where(decision: PlacementDecision) -> str:
    """'<region>/nodes', '<region>/serverless' or 'unplaced'."""
    if decision.chosen is None:
        return "unplaced"
    best = decision.candidates[0]
    return f"{best.region}/{'serverless' if best.burst is not None else 'nodes'}"


def test_a_wave_between_probes_fills_the_nodes_then_bursts() -> None:
    ledger = Reservations()
    snaps = _snapshots(free_cpu=6)
    decisions = _wave(ledger, snaps, 9, PROBED + timedelta(seconds=1), region=AWS)
    # 6 CPU free on the nodes: six one-CPU tasks fit, the rest burst to Fargate.
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 6 + [f"{AWS}/serverless"] * 3
    # The reasons say the free room is the probe's less the wave's own placements.
    assert "2 tasks placed on nodes since the last probe reserved 2 CPU, 4Gi" in (
        decisions[2].reason
    )
    assert (
        "needs 1 CPU, largest free node has 0; 6 tasks placed on nodes since the last probe "
        "reserved 6 CPU, 12Gi" in decisions[6].reason
    )
    # Fargate bills 1 vCPU and 3 GiB (2 GiB + 256 MiB, rounded up to its pod sizes): the
    # headroom shown counts the earlier bursts.
    assert "serverless headroom 198 pods, 198 CPU, 794Gi" in decisions[8].reason
    assert "2 tasks burst since the last probe reserved 2 CPU, 6Gi" in decisions[8].reason
    # Without the ledger every task would have seen the same 4 CPU on the largest node.
    assert ledger.held()[0].region == AWS and len(ledger.held()) == 9


def test_nodes_only_tasks_go_elsewhere_once_the_room_is_given_away() -> None:
    ledger = Reservations()
    decisions = _wave(
        ledger, _snapshots(free_cpu=3), 5, PROBED + timedelta(seconds=1), Capacity.NODES
    )
    # AWS holds the data: it wins while its nodes have room, then Azure (next door) takes
    # the rest; Fargate is never used for `nodes`.
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 3 + [f"{AZURE}/nodes"] * 2
    (aws,) = [f for f in decisions[3].filtered if f.region == AWS]
    assert aws.code is FilterCode.CAPACITY
    assert "3 tasks placed on nodes since the last probe reserved 3 CPU" in aws.reason


def test_a_task_with_nowhere_else_to_go_queues_on_the_nodes_and_says_so() -> None:
    # Left unplaced, it would only be placed again on its backoff; queued, its pod binds
    # as soon as a pod ends or a node boots. The reservations steer, they never hold back.
    ledger = Reservations()
    decisions = _wave(
        ledger, _snapshots(free_cpu=2), 3, PROBED + timedelta(seconds=1), Capacity.NODES,
        region=AWS,
    )  # fmt: skip
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 3
    assert decisions[2].reason.endswith(
        "; the pod may queue for room: 2 tasks placed on nodes since the last probe reserved "
        "2 CPU, 4Gi, and no region or capacity has room left for the task"
    )
    assert "queue" not in decisions[1].reason
    # It takes room too: the next task's reason counts it.
    assert len(ledger.held()) == 3


def test_a_task_nothing_could_take_names_the_reservations_too() -> None:
    ledger = Reservations()
    snaps = _snapshots(free_cpu=3)
    _wave(ledger, snaps, 1, PROBED + timedelta(seconds=1), Capacity.NODES, region=AWS)
    big = _task(9, Capacity.NODES, regions=[AWS]).model_copy(
        update={"resources": Resources(cpu="4", memory="2Gi")}
    )
    decision = ledger.place(
        big, snaps, PlacementWeights(), Catalog.default(), at=PROBED, burst=BURST
    )
    assert decision.chosen is None
    assert decision.reason == (
        f"no healthy region with 4 CPU free; largest free: {AWS} with 2; {AWS}: 1 task "
        "placed on nodes since the last probe reserved 1 CPU, 2Gi; other regions: 3 not "
        "allowed by the task's constraints"
    )


def test_reservations_end_when_a_probe_that_can_have_seen_them_arrives() -> None:
    ledger = Reservations()
    placed_at = PROBED + timedelta(seconds=1)
    _wave(ledger, _snapshots(free_cpu=2), 2, placed_at, region=AWS)

    # A probe that started before the pods could exist does not end them: the next
    # `auto` task still finds the nodes taken, and bursts.
    early = _snapshots(free_cpu=2, probed=placed_at + timedelta(seconds=SETTLE_SECONDS / 2))
    (bursts,) = _wave(ledger, early, 1, placed_at, first=10, region=AWS)
    assert _where(bursts) == f"{AWS}/serverless"

    # A later one counted them: its free room is the truth, the reservations end.
    later = placed_at + timedelta(seconds=SETTLE_SECONDS + 1)
    fresh = _snapshots(free_cpu=2, probed=later)
    decisions = _wave(ledger, fresh, 3, later, first=20, region=AWS)
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 2 + [f"{AWS}/serverless"]
    assert sorted(r.task_id for r in ledger.held()) == ["t-20", "t-21", "t-22"]


def test_reservations_end_after_their_max_age_without_a_probe() -> None:
    ledger = Reservations(max_age_seconds=30)
    placed_at = PROBED + timedelta(seconds=1)
    snaps = _snapshots(free_cpu=1)
    _wave(ledger, snaps, 1, placed_at, region=AWS)
    (within,) = _wave(ledger, snaps, 1, placed_at + timedelta(seconds=29), first=1, region=AWS)
    assert _where(within) == f"{AWS}/serverless"
    # Long after, with still no newer probe (the region stopped answering): expired.
    (after,) = _wave(ledger, snaps, 1, placed_at + timedelta(seconds=31), first=2, region=AWS)
    assert _where(after) == f"{AWS}/nodes"


def test_placing_the_same_task_again_replaces_its_reservation() -> None:
    # A retried activity, or a task placed again after a failed attempt, holds one
    # reservation, not one per decision.
    ledger = Reservations()
    snaps = _snapshots(free_cpu=1)
    for _ in range(3):
        (decision,) = _wave(ledger, snaps, 1, PROBED + timedelta(seconds=1), Capacity.NODES)
        assert _where(decision) == f"{AWS}/nodes"
    assert [r.task_id for r in ledger.held()] == ["t-0"]


def test_serverless_quota_counts_the_bursts_placed_since_the_probe() -> None:
    ledger = Reservations()
    snaps = _snapshots(free_cpu=8, max_pods=2)
    decisions = _wave(
        ledger, snaps, 3, PROBED + timedelta(seconds=1), Capacity.SERVERLESS, region=AWS
    )
    # The third finds the quota taken; nothing else may take it, so it is sent all the
    # same (its pod waits for quota, as before) and the reason says why.
    assert [_where(d) for d in decisions] == [f"{AWS}/serverless"] * 3
    assert decisions[2].reason.endswith(
        "; the pod may queue for room: 2 tasks burst since the last probe reserved 2 CPU, "
        "6Gi, and no region or capacity has room left for the task"
    )
    # The quota's own reason counts the bursts, where it is the answer.
    reserved = with_reservations(snaps, ledger.held())
    serverless_only = _task(9, Capacity.SERVERLESS, region=AWS)
    (aws,) = [
        f
        for f in place(serverless_only, reserved, PlacementWeights(), Catalog.default()).filtered
        if f.region == AWS
    ]
    assert aws.reason == (
        "serverless (fargate) quota full: 3 of 2 pods (3 tasks burst since the last probe "
        "reserved 3 CPU, 9Gi)"
    )


def test_with_reservations_leaves_the_given_snapshots_alone() -> None:
    snaps = _snapshots(free_cpu=4)
    before = [s.model_dump() for s in snaps]
    held = [
        Reservation("a", AWS, False, 1000, 2 * GIB, PROBED + timedelta(seconds=1)),
        Reservation("b", AWS, True, 1000, 2 * GIB, PROBED + timedelta(seconds=1)),
        # Seen by the probe already (placed well before it): not subtracted again.
        Reservation("c", AWS, False, 1000, 2 * GIB, PROBED - timedelta(seconds=10)),
        Reservation("d", "no-such-region", False, 1000, 2 * GIB, PROBED),
    ]
    after = {s.name: s for s in with_reservations(snaps, held)}
    assert [s.model_dump() for s in snaps] == before
    aws = after[AWS]
    original = next(s for s in snaps if s.name == AWS)
    assert aws.cpu_requested_millis == original.cpu_requested_millis + 1000
    assert aws.largest_free_cpu_millis == 3000  # 4 free in all, less one
    assert aws.serverless is not None and aws.serverless.usage is not None
    assert aws.serverless.usage.pods == 1
    assert aws.reserved is not None
    assert (aws.reserved.nodes_tasks, aws.reserved.serverless_tasks) == (1, 1)
    assert after[AZURE] is next(s for s in snaps if s.name == AZURE)


def test_bad_ledger_bounds_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="settle_seconds"):
        Reservations(settle_seconds=-1)
    with pytest.raises(ValueError, match="max_age_seconds"):
        Reservations(max_age_seconds=0)
    # The central worker's bound outlives a few probe rounds.
    slow = FailoverSettings(health_interval_seconds=20, probe_api_timeout_seconds=10)
    assert max_age_for(slow) > 3 * 20
    assert max_age_for(FailoverSettings()) == 30.0


def _slots(snaps: list[RegionSnapshot], free: int, region: str = AWS) -> list[RegionSnapshot]:
    """`region` with 3 nodes x 110 pod slots, `free` of them free as probed."""
    return [
        s.model_copy(update={"pods_allocatable": 330, "pods_live": 330 - free})
        if s.name == region
        else s
        for s in snaps
    ]


def test_with_n_pod_slots_free_the_next_task_goes_elsewhere() -> None:
    # Plenty of CPU (8 free, tasks of 1), but 3 slots: each task placed on the nodes
    # holds one until a probe counts its pod.
    ledger = Reservations()
    snaps = _slots(_snapshots(free_cpu=8), free=3)
    at = PROBED + timedelta(seconds=1)
    decisions = _wave(ledger, snaps, 5, at, Capacity.NODES)
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 3 + [f"{AZURE}/nodes"] * 2
    (aws,) = [f for f in decisions[3].filtered if f.region == AWS]
    assert (aws.code, aws.reason) == (
        FilterCode.CAPACITY,
        "no pod slot free: 330 of 330 pods (3 tasks placed on nodes since the last probe "
        "reserved 3 CPU, 6Gi)",
    )
    # A probe that counted their pods ends the reservations: its figures are the truth.
    later = at + timedelta(seconds=SETTLE_SECONDS + 1)
    fresh = _slots(_snapshots(free_cpu=8, probed=later), free=1)
    after = _wave(ledger, fresh, 2, later, Capacity.NODES, first=10)
    assert [_where(d) for d in after] == [f"{AWS}/nodes", f"{AZURE}/nodes"]


def test_pod_slot_reservations_expire_with_the_rest() -> None:
    ledger = Reservations(max_age_seconds=30)
    snaps = _slots(_snapshots(free_cpu=8), free=1)
    placed_at = PROBED + timedelta(seconds=1)
    _wave(ledger, snaps, 1, placed_at, Capacity.NODES)
    (within,) = _wave(ledger, snaps, 1, placed_at + timedelta(seconds=29), Capacity.NODES, 1)
    assert _where(within) == f"{AZURE}/nodes"
    (after,) = _wave(ledger, snaps, 1, placed_at + timedelta(seconds=31), Capacity.NODES, 2)
    assert _where(after) == f"{AWS}/nodes"


def test_unknown_pod_slots_never_steer_a_wave() -> None:
    ledger, plain = Reservations(), Reservations()
    at = PROBED + timedelta(seconds=1)
    unknown = [s.model_copy(update={"pods_live": 10_000}) for s in _snapshots(free_cpu=8)]
    assert [_where(d) for d in _wave(ledger, unknown, 10, at, Capacity.NODES)] == [
        _where(d) for d in _wave(plain, _snapshots(free_cpu=8), 10, at, Capacity.NODES)
    ]


def test_full_pod_slots_burst_an_auto_task_and_bursts_take_no_slot() -> None:
    # Fargate pods run on the virtual node, not in the pools' slots: an `auto` task the
    # nodes turn away for slots bursts (its pools boot in 90 s, beyond the 60 s a task
    # waits), and bursts leave the one slot free for a `nodes` task.
    ledger = Reservations()
    at = PROBED + timedelta(seconds=1)
    full = _slots(_snapshots(free_cpu=8), free=0)
    (burst,) = _wave(ledger, full, 1, at, region=AWS)
    assert _where(burst) == f"{AWS}/serverless"
    assert "no pod slot free: 330 of 330 pods, and a new node takes 90s to boot" in burst.reason
    one = _slots(_snapshots(free_cpu=8), free=1)
    bursts = _wave(ledger, one, 3, at, Capacity.SERVERLESS, first=10, region=AWS)
    assert [_where(d) for d in bursts] == [f"{AWS}/serverless"] * 3
    (nodes,) = _wave(ledger, one, 1, at, Capacity.NODES, first=20, region=AWS)
    assert _where(nodes) == f"{AWS}/nodes"
    assert "queue" not in nodes.reason


def test_the_last_slot_given_away_queues_a_task_with_nowhere_else_to_go() -> None:
    # As for CPU: the reservations steer, they never make a task wait for its backoff.
    ledger = Reservations()
    snaps = _slots(_snapshots(free_cpu=8), free=1)
    decisions = _wave(ledger, snaps, 2, PROBED + timedelta(seconds=1), Capacity.NODES, region=AWS)
    assert [_where(d) for d in decisions] == [f"{AWS}/nodes"] * 2
    assert decisions[1].reason.endswith(
        "; the pod may queue for room: 1 task placed on nodes since the last probe reserved "
        "1 CPU, 2Gi, and no region or capacity has room left for the task"
    )
