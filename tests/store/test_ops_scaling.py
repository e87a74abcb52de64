from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meridian.store import Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_sweep_runs_are_recorded_once_and_listed_newest_first(store: Store) -> None:
    found = {"active": 120, "drift": [{"task": "t-1", "job": "Failed"}]}
    fixed = {"signalled": ["t-1"]}
    assert store.record_sweep_run(
        run_id="sweep-running-1",
        kind="running-tasks",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        found=found,
        fixed=fixed,
        k8s_requests=3,
        db_queries=2,
    )
    assert not store.record_sweep_run(
        run_id="sweep-running-1",
        kind="running-tasks",
        started_at=T0,
        finished_at=None,
        found={},
        fixed={},
        k8s_requests=0,
        db_queries=0,
    )
    assert store.record_sweep_run(
        kind="jobs",
        started_at=T0 + timedelta(seconds=20),
        finished_at=None,
        found={"jobs": 0},
        fixed={},
        k8s_requests=14,
        db_queries=1,
        error="region r3 unreachable",
    )

    # Without an explicit id, kind and start time identify the run: a retry is a no-op.
    assert not store.record_sweep_run(
        kind="jobs",
        started_at=T0 + timedelta(seconds=20),
        finished_at=None,
        found={},
        fixed={},
        k8s_requests=0,
        db_queries=0,
    )

    runs = store.list_sweep_runs()
    assert [r.id for r in runs] == ["jobs:2025-03-01T12:00:20+00:00", "sweep-running-1"]
    assert runs[0].error == "region r3 unreachable" and runs[0].finished_at is None
    running = store.list_sweep_runs(kind="running-tasks")
    assert len(running) == 1
    assert (running[0].found, running[0].fixed, running[0].k8s_requests) == (found, fixed, 3)
    assert store.list_sweep_runs(limit=1)[0].kind == "jobs"
    with pytest.raises(ValueError):
        store.record_sweep_run(
            run_id="x",
            kind="weekly",
            started_at=T0,
            finished_at=None,
            found={},
            fixed={},
            k8s_requests=0,
            db_queries=0,
        )


def test_orphans_lifecycle(store: Store) -> None:
    assert store.record_orphan(
        "r1", "etl-1-a1", task_id="etl-1", attempt=1, reason="region down at failover", at=T0
    )
    assert not store.record_orphan(
        "r1", "etl-1-a1", task_id="etl-1", attempt=1, reason="again", at=T0
    )
    store.record_orphan("r2", "mystery-a1", task_id=None, attempt=None, reason="unknown", at=T0)

    assert [(o.region, o.job_name, o.reason) for o in store.list_orphans()] == [
        ("r1", "etl-1-a1", "region down at failover"),
        ("r2", "mystery-a1", "unknown"),
    ]
    assert [o.job_name for o in store.list_orphans(region="r2")] == ["mystery-a1"]

    deleted_at = T0 + timedelta(minutes=3)
    assert store.mark_orphan_deleted("r1", "etl-1-a1", deleted_at)
    assert not store.mark_orphan_deleted("r1", "etl-1-a1", deleted_at + timedelta(seconds=1))
    assert not store.mark_orphan_deleted("r1", "never-seen", deleted_at)

    assert [o.job_name for o in store.list_orphans()] == ["mystery-a1"]
    everything = store.list_orphans(include_deleted=True)
    assert [o.deleted_at for o in everything] == [deleted_at, None]


def test_scaling_mode_defaults_to_auto(store: Store) -> None:
    assert store.get_scaling_mode("r1") == "auto"
    assert store.set_scaling_mode("r1", "advise")
    assert not store.set_scaling_mode("r1", "advise")
    assert store.get_scaling_mode("r1") == "advise"
    assert store.set_scaling_mode("r1", "off")
    assert store.list_scaling_modes() == {"r1": "off"}
    assert store.get_scaling_mode("r2") == "auto"
    with pytest.raises(ValueError):
        store.set_scaling_mode("r1", "turbo")


def test_scaling_decisions_and_water_levels(store: Store) -> None:
    numbers = {"level": 0.86, "high_water": 0.8, "desired": 4, "new_desired": 5}
    assert store.record_scaling_decision(
        decision_id="r1:tick-7:0",
        region="r1",
        at=T0,
        kind="scale-up",
        target="pool-a",
        reason="water level above high mark for 60s",
        numbers=numbers,
        applied=True,
    )
    assert not store.record_scaling_decision(
        decision_id="r1:tick-7:0",
        region="r1",
        at=T0,
        kind="scale-up",
        target="pool-a",
        reason="retried",
        numbers=numbers,
        applied=True,
    )
    assert store.record_scaling_decision(
        region="r1",
        at=T0 + timedelta(seconds=20),
        kind="cordon",
        target="node-3",
        reason="NotReady",
        numbers={},
        applied=False,
    )
    # Default id: region, time, kind and target; a retry is a no-op.
    assert not store.record_scaling_decision(
        region="r1",
        at=T0 + timedelta(seconds=20),
        kind="cordon",
        target="node-3",
        reason="NotReady (retried)",
        numbers={},
        applied=False,
    )
    decisions = store.list_scaling_decisions("r1")
    assert [(d.kind, d.applied) for d in decisions] == [("cordon", False), ("scale-up", True)]
    assert decisions[1].numbers == numbers
    assert store.list_scaling_decisions("r2") == []

    for tick in range(3):
        assert store.record_water_level(
            region="r1",
            at=T0 + timedelta(seconds=10 * tick),
            level=0.5 + tick / 10,
            cpu_requested=4000 + tick,
            cpu_allocatable=8000,
            mem_requested=16 * 2**30,
            mem_allocatable=64 * 2**30,
        )
    assert not store.record_water_level(
        region="r1",
        at=T0,
        level=0.1,
        cpu_requested=0,
        cpu_allocatable=1,
        mem_requested=0,
        mem_allocatable=1,
    )
    history = store.water_level_history("r1", limit=2)
    assert [(w.level, w.cpu_requested) for w in history] == [(0.7, 4002), (0.6, 4001)]
    assert history[0].mem_allocatable == 64 * 2**30


def test_an_orphan_names_the_namespace_its_job_is_in(store: Store) -> None:
    store.record_orphan(
        "r1", "ads-1-a1", task_id="ads-1", attempt=1, reason="down", at=T0, namespace="meridian-ads"
    )
    # A create that never answered: where it may have landed is not known.
    store.record_orphan("r1", "ads-2-a1", task_id="ads-2", attempt=1, reason="lost", at=T0)
    assert [(o.job_name, o.namespace) for o in store.list_orphans()] == [
        ("ads-1-a1", "meridian-ads"),
        ("ads-2-a1", None),
    ]
