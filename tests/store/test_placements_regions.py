from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meridian.regions.details import RegionDetails
from meridian.regions.load import RegionLoad
from meridian.scaling.contracts import CONTROL_DETAIL_KEYS, ControlDetails
from meridian.store import Store, TaskNotFoundError
from meridian.tasks.spec import TaskStatus

from .conftest import make_spec

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_placements_are_recorded_once_and_latest_wins(store: Store) -> None:
    store.create_task("etl-1", make_spec(), status=TaskStatus.SCHEDULING)
    first = {"region": "r1", "scores": {"r1": 0.91, "r2": 0.4}, "excluded": {}}
    second = {"region": "r2", "scores": {"r2": 0.7}, "excluded": {"r1": "down"}}

    assert store.record_placement("etl-1", 1, 0, first, T0)
    assert not store.record_placement("etl-1", 1, 0, {"region": "other"}, T0)  # retried
    assert store.latest_placement("etl-1") == first
    assert store.record_placement("etl-1", 2, 3, second, T0 + timedelta(seconds=30))

    assert store.latest_placement("etl-1") == second
    placements = store.list_placements("etl-1")
    assert [(p.attempt, p.seq, p.decision) for p in placements] == [(1, 0, first), (2, 3, second)]
    assert placements[1].decided_at == T0 + timedelta(seconds=30)
    assert store.latest_placement("unknown") is None
    with pytest.raises(TaskNotFoundError):
        store.record_placement("unknown", 1, 0, first, T0)


def test_region_state_changes_are_events(store: Store) -> None:
    assert store.record_region_state("r1", "up", "first probe", T0)
    assert not store.record_region_state("r1", "up", "probe ok", T0 + timedelta(seconds=2))
    assert store.record_region_state(
        "r1",
        "down",
        "unit worker not polling",
        T0 + timedelta(seconds=12),
        RegionDetails(pollers=0),
    )
    assert not store.record_region_state(
        "r1", "down", "still not polling", T0 + timedelta(seconds=14), RegionDetails(pollers=0)
    )
    assert store.record_region_state("r2", "degraded", "api errors 30%", T0)

    states = store.get_region_states()
    assert set(states) == {"r1", "r2"}
    r1 = states["r1"]
    assert r1.state == "down" and r1.reason == "still not polling"
    # `since` is when it went down, not the latest probe.
    assert r1.since == T0 + timedelta(seconds=12)
    assert r1.updated_at == T0 + timedelta(seconds=14)
    assert r1.details == RegionDetails(pollers=0)
    assert states["r2"].details == RegionDetails()

    events = store.list_region_events("r1")
    assert [(e.previous_state, e.state, e.reason) for e in events] == [
        ("up", "down", "unit worker not polling"),
        (None, "up", "first probe"),
    ]
    assert len(store.list_region_events()) == 3
    assert len(store.list_region_events(limit=1)) == 1
    with pytest.raises(ValueError):
        store.record_region_state("r1", "sideways", "?", T0)


def test_network_paths_upsert(store: Store) -> None:
    store.upsert_network_path("r1", "aws:us-east-1", 12.345678901, 0.0, 5, T0)
    store.upsert_network_path("r1", "r2", 80.5, 0.02, 5, T0)
    updated = store.upsert_network_path(
        "r1", "aws:us-east-1", 13.25, 0.125, 10, T0 + timedelta(seconds=5)
    )
    store.upsert_network_path("r2", "r1", 81.0, 0.0, 1, T0)

    assert updated.rtt_ms == 13.25 and updated.samples == 10
    paths = store.list_network_paths("r1")
    assert [(p.target, p.rtt_ms, p.loss, p.samples) for p in paths] == [
        ("aws:us-east-1", 13.25, 0.125, 10),
        ("r2", 80.5, 0.02, 5),
    ]
    assert paths[0].measured_at == T0 + timedelta(seconds=5)
    assert len(store.list_network_paths()) == 3
    # Doubles, not single-precision floats, on both backends.
    store.upsert_network_path("r3", "r1", 12.345678901, 0.1, 1, T0)
    assert store.list_network_paths("r3")[0].rtt_ms == 12.345678901


def test_state_write_keeps_keys_another_writer_owns(store: Store) -> None:
    store.record_region_state("r2", "up", "ok", T0, RegionDetails(load=RegionLoad(nodes_ready=3)))
    # The control loop marks the region draining after the monitor read the row...
    assert store.merge_region_details("r2", ControlDetails(draining=True, draining_reason="full"))
    assert not store.merge_region_details(
        "r2", ControlDetails(draining=True, draining_reason="full")
    )
    # ...and the monitor then writes from its stale copy: `draining` must survive.
    store.record_region_state(
        "r2",
        "up",
        "ok",
        T0 + timedelta(seconds=2),
        RegionDetails(load=RegionLoad(nodes_ready=2)),
        keep_details=CONTROL_DETAIL_KEYS,
    )
    details = store.get_region_states()["r2"].details
    assert details == RegionDetails(
        load=RegionLoad(nodes_ready=2), draining=True, draining_reason="full"
    )
    # Without keep_details the write replaces the details whole (the old behaviour).
    store.record_region_state("r2", "up", "ok", T0 + timedelta(seconds=4), RegionDetails())
    assert store.get_region_states()["r2"].details == RegionDetails()
