"""Tasks waiting for room count as demand for the regions placement turned them away from;
one scan serves every region's tick for a moment, and each worker owns its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meridian.scaling import Request
from meridian.scaling.loop import WaitingDemand
from meridian.store import Store
from meridian.tasks.spec import TaskSpec, TaskStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'meridian.db'}") as store:
        store.migrate()
        yield store


def wait_for_room(
    store: Store, task_id: str, *regions_and_codes: tuple[str, str], capacity: str = "auto"
) -> None:
    spec = TaskSpec.model_validate(
        {
            "name": task_id,
            "business_unit": "ads",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "placement": {"capacity": capacity},
            "job": {"image": "busybox", "resources": {"cpu": "2", "memory": "1Gi"}},
        }
    )
    store.create_task(task_id, spec, status=TaskStatus.SCHEDULING)
    filtered = [{"region": r, "code": c, "reason": "?"} for r, c in regions_and_codes]
    store.record_placement(task_id, 1, 0, {"chosen": None, "filtered": filtered}, T0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_waiting_tasks_are_demand_where_room_was_short(store: Store) -> None:
    wait_for_room(store, "t1", ("aws-us-east-1", "capacity"), ("azure-eastus", "down"))
    wait_for_room(
        store,
        "t2",
        ("aws-us-east-1", "saturated"),
        ("gcp-europe-west1", "no_nodes"),
        capacity="nodes",
    )
    demand = WaitingDemand(store)
    task = {"cpu": 2000, "mem": 1 << 30}
    # An `auto` task may burst instead of a pool growing for it; a `nodes` one may not.
    assert demand.for_region("aws-us-east-1") == [
        Request(id="task/t1", burstable=True, **task),
        Request(id="task/t2", burstable=False, **task),
    ]
    assert demand.for_region("gcp-europe-west1") == [Request(id="task/t2", **task)]
    assert demand.for_region("azure-eastus") == []  # down is not a lack of room


def test_one_scan_serves_its_worker_until_it_is_stale(store: Store) -> None:
    clock = Clock()
    demand = WaitingDemand(store, ttl_seconds=5.0, clock=clock)
    assert demand.for_region("aws-us-east-1") == []
    wait_for_room(store, "t1", ("aws-us-east-1", "capacity"))
    clock.now = 4.0
    assert demand.for_region("aws-us-east-1") == []  # the scan of a moment ago
    # Another worker's cache is its own, not a module-wide one keyed by the store.
    assert len(WaitingDemand(store, clock=clock).for_region("aws-us-east-1")) == 1
    clock.now = 5.0
    assert len(demand.for_region("aws-us-east-1")) == 1
