"""The central worker's metrics move when its activities see the event: transitions,
failovers, placement, region health, scaling, sweeps and the active-task gauge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from activities.regions import RegionActivities
from activities.scaling import ScalingCentralActivities
from activities.sweeps import SweepActivities
from activities.tasks import TaskActivities
from meridian.observability import metrics as m
from meridian.observability import record as measure
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.contracts import AssessRegionsInput, ProbeOutcome
from meridian.regions.models import ProbeSnapshot
from meridian.regions.view import RegionView
from meridian.scaling.contracts import DecideScalingInput, ObserveRegionResult
from meridian.scaling.loop import ScalingConfig, WaitingDemand
from meridian.scaling.models import (
    NodeObservation,
    PoolObservation,
    RegionObservation,
    ScalingState,
)
from meridian.settings import FailoverSettings, Settings
from meridian.store import Store
from meridian.sweeps.contracts import RecordSweepInput, ResumeUnstartedInput, SweepRegionResult
from meridian.tasks.contracts import PlaceTaskInput, RecordStatusInput
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.api.stage import DEV_REGIONS
from tests.integration.harness import task_body
from tests.observability.support import sample, series

EAST, WEST = "aws-us-east-1", "azure-eastus"
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}")
    store.migrate()
    yield store
    store.close()


def spec(unit: str = "ads") -> TaskSpec:
    return TaskSpec.model_validate(task_body(business_unit=unit))


def task_activities(store: Store) -> TaskActivities:
    regions = load_regions(DEV_REGIONS)
    view = RegionView(store, regions, Settings().placement, Catalog.default())
    return TaskActivities(store, view)


def status(task_id: str, seq: int, state: TaskStatus, **fields: Any) -> RecordStatusInput:
    fields.setdefault("attempt", 1)
    fields.setdefault("reason", "noted")
    fields.setdefault("at", T0 + timedelta(seconds=seq))
    return RecordStatusInput(task_id=task_id, seq=seq, status=state, **fields)


def transitions(state: str, region: str, unit: str) -> float:
    return sample(
        m.CENTRAL,
        "meridian_task_transitions_total",
        status=state,
        region=region,
        business_unit=unit,
    )


def test_transitions_of_many_tasks_make_one_series(store: Store) -> None:
    acts = task_activities(store)
    before = transitions("RUNNING", EAST, "transit-unit")
    for n in range(30):
        store.create_task(f"many-{n}", spec("transit-unit"), status=TaskStatus.SCHEDULING)
        acts.record_status(status(f"many-{n}", 1, TaskStatus.RUNNING, region=EAST))
    # A retried activity (same seq) records, and counts, nothing.
    acts.record_status(status("many-0", 1, TaskStatus.RUNNING, region=EAST))
    assert transitions("RUNNING", EAST, "transit-unit") == before + 30
    labels = series(m.CENTRAL, "meridian_task_transitions_total")
    assert not any("many-" in value for s in labels for value in s.values()), labels


def test_a_failover_is_counted_and_timed_from_detection_to_running_elsewhere(
    store: Store,
) -> None:
    acts = task_activities(store)
    store.create_task("moved", spec(), status=TaskStatus.SCHEDULING)
    failovers = sample(m.CENTRAL, "meridian_failovers_total", reason="region_down")
    timed = sample(m.CENTRAL, "meridian_failover_duration_seconds_count", reason="region_down")
    total = sample(m.CENTRAL, "meridian_failover_duration_seconds_sum", reason="region_down")
    acts.record_status(status("moved", 1, TaskStatus.RUNNING, region=EAST))
    detected = status(
        "moved",
        2,
        TaskStatus.SCHEDULING,
        region=EAST,
        reason=f"moving: region {EAST} down: unreachable",
        at=T0 + timedelta(seconds=100),
    )
    acts.record_status(detected)
    assert sample(m.CENTRAL, "meridian_failovers_total", reason="region_down") == failovers + 1
    created = status(
        "moved", 3, TaskStatus.SCHEDULING, attempt=2, region=WEST, reason="Job created"
    )
    acts.record_status(created)
    running = status(
        "moved", 4, TaskStatus.RUNNING, attempt=2, region=WEST, at=T0 + timedelta(seconds=112)
    )
    acts.record_status(running)
    labels = {"reason": "region_down"}
    assert sample(m.CENTRAL, "meridian_failover_duration_seconds_count", **labels) == timed + 1
    assert sample(m.CENTRAL, "meridian_failover_duration_seconds_sum", **labels) == total + 12


def test_a_retry_in_place_is_no_failover(store: Store) -> None:
    acts = task_activities(store)
    store.create_task("retried", spec(), status=TaskStatus.SCHEDULING)
    before = sum(
        sample(m.CENTRAL, "meridian_failover_duration_seconds_count", **labels)
        for labels in series(m.CENTRAL, "meridian_failover_duration_seconds_count")
    )
    acts.record_status(status("retried", 1, TaskStatus.RUNNING, region=EAST))
    acts.record_status(
        status("retried", 2, TaskStatus.SCHEDULING, region=EAST, reason="retrying: exit code 1")
    )
    acts.record_status(status("retried", 3, TaskStatus.RUNNING, attempt=2, region=EAST))
    after = sum(
        sample(m.CENTRAL, "meridian_failover_duration_seconds_count", **labels)
        for labels in series(m.CENTRAL, "meridian_failover_duration_seconds_count")
    )
    assert after == before


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("moving: region aws-us-east-1 down: unreachable", "region_down"),
        ("moving: Job unschedulable in aws-us-east-1 for 60s", "unschedulable"),
        ("moving: Job meridian-x-1 disappeared from aws-us-east-1", "job_lost"),
        ("moving: resident pod gone (confirmed by the Kubernetes API)", "job_lost"),
        ("moving: resident channel reports failing: disk", "resident_failing"),
        ("moving: NodeLost in aws-us-east-1 on node n1", "infrastructure"),
        ("could not create Job in aws-us-east-1: unreachable", "create_failed"),
        ("could not prepare namespace in aws-us-east-1: unreachable", "create_failed"),
        ("retrying: Job meridian-x-1 failed: exit code 1", None),
        ("Job meridian-x-1 created in aws-us-east-1", None),
    ],
)
def test_failover_reasons_are_a_fixed_set(reason: str, expected: str | None) -> None:
    assert measure.failover_reason(TaskStatus.SCHEDULING, reason) == expected


def decisions() -> float:
    return sum(
        sample(m.CENTRAL, "meridian_placement_decisions_total", **labels)
        for labels in series(m.CENTRAL, "meridian_placement_decisions_total")
    )


def test_placement_is_counted_by_region_and_filter_and_timed(store: Store) -> None:
    acts = task_activities(store)
    store.create_task("placed", spec(), status=TaskStatus.SCHEDULING)
    timed = sample(m.CENTRAL, "meridian_placement_duration_seconds_count")
    excluded = sample(
        m.CENTRAL, "meridian_placement_filtered_total", region=WEST, reason="excluded"
    )
    made = decisions()
    inp = PlaceTaskInput(
        task_id="placed", spec=spec(), attempt=1, seq=1, excluded_regions={WEST: "failed it"}
    )
    result = ActivityEnvironment().run(acts.place_task, inp)
    assert decisions() == made + 1
    chosen = m.label(result.region)
    assert sample(m.CENTRAL, "meridian_placement_decisions_total", region=chosen) >= 1
    assert sample(m.CENTRAL, "meridian_placement_duration_seconds_count") == timed + 1
    assert (
        sample(m.CENTRAL, "meridian_placement_filtered_total", region=WEST, reason="excluded")
        == excluded + 1
    )


def test_active_tasks_are_read_from_the_database_by_status_and_unit(store: Store) -> None:
    for n in range(3):
        store.create_task(f"ads-{n}", spec("ads"), status=TaskStatus.SCHEDULING)
    store.create_task("ml-0", spec("ml"), status=TaskStatus.SCHEDULING)
    TaskActivities(store, cast(RegionView, None)).record_status(
        status("ml-0", 1, TaskStatus.RUNNING, region=EAST)
    )
    store.create_task("ml-1", spec("ml"), status=TaskStatus.SCHEDULING)
    TaskActivities(store, cast(RegionView, None)).record_status(
        status("ml-1", 1, TaskStatus.SUCCEEDED, region=EAST)
    )
    m.ACTIVE_TASKS.bind(lambda: measure.active_task_counts(store.count_active_by_unit()))
    try:
        active = {
            (s["status"], s["business_unit"]): sample(m.CENTRAL, "meridian_active_tasks", **s)
            for s in series(m.CENTRAL, "meridian_active_tasks")
        }
    finally:
        m.ACTIVE_TASKS.bind(None)
    assert active == {
        ("SCHEDULING", "ads"): 3,
        ("RUNNING", "ads"): 0,
        ("SCHEDULING", "ml"): 0,
        ("RUNNING", "ml"): 1,
    }


async def test_assessment_sets_health_state_and_water_level(store: Store) -> None:
    regions = load_regions(DEV_REGIONS)
    view = RegionView(store, regions, Settings().placement, Catalog.default())
    acts = RegionActivities(store, view, FailoverSettings())
    load = ProbeSnapshot(
        nodes_total=2,
        nodes_ready=2,
        cpu_allocatable_millis=4000,
        cpu_requested_millis=3000,
        memory_allocatable_bytes=8 << 30,
        memory_requested_bytes=2 << 30,
    )
    probe = ProbeOutcome(region=EAST, reachable=True, worker_answered=True, snapshot=load)
    await ActivityEnvironment().run(acts.assess_regions, AssessRegionsInput(probes=[probe], at=T0))
    assert sample(m.CENTRAL, "meridian_region_health", region=EAST, state="up") == 1
    assert sample(m.CENTRAL, "meridian_region_health", region=EAST, state="down") == 0
    assert sample(m.CENTRAL, "meridian_region_water_level", region=EAST) == pytest.approx(0.75)


def test_scaling_decisions_are_counted_by_action_and_cause(store: Store) -> None:
    regions = load_regions(DEV_REGIONS)
    acts = ScalingCentralActivities(
        store, ScalingConfig(Settings().scaling, regions), WaitingDemand(store)
    )
    full = [
        NodeObservation(
            name=f"n{i}",
            pool="general",
            ready=True,
            cpu_allocatable=8000,
            mem_allocatable=32 << 30,
            cpu_requested=7800,
            mem_requested=30 << 30,
        )
        for i in range(2)
    ]
    observation = RegionObservation(
        region=EAST,
        at=0.0,
        pools=[PoolObservation(name="general", min=1, desired=2, max=8, current=2, ready=2)],
        nodes=full,
    )
    inp = DecideScalingInput(
        region=EAST,
        at=T0,
        observed=ObserveRegionResult(observation=observation),
        # Above the high mark for a minute already: time to grow the pool.
        state=ScalingState(above_high_since=(T0 - timedelta(minutes=1)).timestamp()),
    )
    before = {
        (s["action"], s["cause"]): sample(m.CENTRAL, "meridian_scaling_decisions_total", **s)
        for s in series(m.CENTRAL, "meridian_scaling_decisions_total")
        if s["region"] == EAST
    }
    result = acts.decide_scaling(inp)
    assert result.decisions
    for decision in result.decisions:
        key = (decision.kind.value, decision.cause.value)
        after = sample(
            m.CENTRAL,
            "meridian_scaling_decisions_total",
            region=EAST,
            action=key[0],
            cause=key[1],
        )
        assert after > before.get(key, 0.0)


def test_a_sweep_run_counts_drift_found_and_fixed(store: Store) -> None:
    acts = SweepActivities(store, None, Settings())
    kind = "jobs"
    runs = sample(m.CENTRAL, "meridian_sweep_runs_total", kind=kind, outcome="error")
    stale = sample(m.CENTRAL, "meridian_sweep_drift_found_total", kind=kind, drift="stale")
    deleted = sample(m.CENTRAL, "meridian_sweep_drift_fixed_total", kind=kind, fix="deleted")
    timed = sample(m.CENTRAL, "meridian_sweep_duration_seconds_count", kind=kind)
    acts.record_sweep(
        RecordSweepInput(
            kind=kind,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3),
            regions=[
                SweepRegionResult(
                    region=EAST, jobs_seen=9, found={"stale": 2}, fixed={"deleted": 2}
                ),
                SweepRegionResult(region=WEST, error="unreachable"),
            ],
        )
    )
    assert sample(m.CENTRAL, "meridian_sweep_runs_total", kind=kind, outcome="error") == runs + 1
    assert (
        sample(m.CENTRAL, "meridian_sweep_drift_found_total", kind=kind, drift="stale") == stale + 2
    )
    assert (
        sample(m.CENTRAL, "meridian_sweep_drift_fixed_total", kind=kind, fix="deleted")
        == deleted + 2
    )
    assert sample(m.CENTRAL, "meridian_sweep_duration_seconds_count", kind=kind) == timed + 1
    # What a sweep looked at is no drift.
    assert sample(m.CENTRAL, "meridian_sweep_last_run_drift", kind=kind) == 2
    assert not any(
        s.get("drift") == "jobs_seen" for s in series(m.CENTRAL, "meridian_sweep_drift_found_total")
    )


class RefusingTemporal:
    async def start_workflow(self, *_: Any, **__: Any) -> None:
        raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")


async def test_a_workflow_the_resume_sweep_cannot_start_is_counted(store: Store) -> None:
    store.create_task("stranded", spec(), status=TaskStatus.SCHEDULING)
    acts = SweepActivities(store, cast(Client, RefusingTemporal()), Settings())
    before = sample(m.CENTRAL, "meridian_sweep_resume_failures_total")
    later = datetime.now(UTC) + timedelta(hours=1)
    result = await acts.resume_unstarted_tasks(ResumeUnstartedInput(older_than_seconds=1, at=later))
    assert (result.checked, result.started) == (1, 0)
    assert sample(m.CENTRAL, "meridian_sweep_resume_failures_total") == before + 1
