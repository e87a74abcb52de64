"""Quotas counted in the database, in the transaction that creates or starts the task:
on SQLite (a file) and on MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meridian.store import Store, Transition
from meridian.tasks.spec import TaskSpec, TaskStatus
from meridian.tenancy.quotas import QuotaExceeded, QuotaSettings, TaskTooLarge
from tests.store.conftest import Clock, make_spec

UNIT = "payments"  # make_spec's business unit


def quotas(**limits: object) -> QuotaSettings:
    return QuotaSettings.model_validate({"default": {}, "units": {UNIT: limits}})


def spec(cpu: str = "500m", memory: str = "256Mi") -> TaskSpec:
    return make_spec(job={"image": "busybox", "resources": {"cpu": cpu, "memory": memory}})


def submit(
    store: Store,
    task_id: str,
    limits: QuotaSettings,
    *,
    start: bool = True,
    body: TaskSpec | None = None,
    key: str | None = None,
) -> bool:
    outcome = store.create_task_within_quota(
        task_id,
        body or spec(),
        status=TaskStatus.SCHEDULING if start else TaskStatus.PENDING,
        idempotency_key=key,
        quotas=limits,
    )
    return outcome.created


def finish(store: Store, task_id: str) -> None:
    store.record_transition(
        Transition(
            task_id=task_id,
            event_key="done",
            seq=5,
            status=TaskStatus.SUCCEEDED,
            attempt=1,
            at=datetime.now(UTC),
            reason="done",
        )
    )


def start(store: Store, task_id: str, limits: QuotaSettings) -> bool:
    return store.start_within_quota(
        Transition(
            task_id=task_id,
            event_key="start",
            seq=0,
            status=TaskStatus.SCHEDULING,
            attempt=0,
            at=datetime.now(UTC),
            reason="started by user",
        ),
        quotas=limits,
    )


def test_max_active_tasks_refuses_the_next_and_creates_nothing(store: Store) -> None:
    limits = quotas(max_active_tasks=2)
    assert submit(store, "a", limits) and submit(store, "b", limits)
    with pytest.raises(QuotaExceeded) as caught:
        submit(store, "c", limits)
    assert caught.value.quota == "max_active_tasks"
    assert str(caught.value) == f"business unit {UNIT}: 2 active tasks, quota max_active_tasks 2"
    assert store.get_task("c") is None
    # Another unit has its own count.
    other = make_spec(business_unit="ads")
    assert store.create_task_within_quota(
        "x", other, status=TaskStatus.SCHEDULING, idempotency_key=None, quotas=limits
    ).created
    # A finished task frees its slot.
    finish(store, "a")
    assert submit(store, "c", limits)


def test_pending_tasks_hold_nothing_until_started(store: Store) -> None:
    limits = quotas(max_active_tasks=1)
    assert submit(store, "running", limits)
    assert submit(store, "later", limits, start=False)  # PENDING: not counted
    with pytest.raises(QuotaExceeded):
        start(store, "later", limits)
    task = store.get_task("later")
    assert task is not None and task.status is TaskStatus.PENDING
    assert store.list_events("later") == []
    finish(store, "running")
    assert start(store, "later", limits)
    assert store.usage(UNIT).tasks == 1


def test_cpu_and_memory_sum_the_active_tasks_requests(store: Store) -> None:
    limits = quotas(cpu="2", memory="3Gi")
    assert submit(store, "a", limits, body=spec("1500m", "1Gi"))
    with pytest.raises(QuotaExceeded) as cpu:
        submit(store, "b", limits, body=spec("600m", "1Gi"))
    assert cpu.value.quota == "cpu" and "cpu 1500m, this task 600m, quota cpu 2" in str(cpu.value)
    assert submit(store, "b", limits, body=spec("400m", "1Gi"))
    with pytest.raises(QuotaExceeded) as memory:
        submit(store, "c", limits, body=spec("1m", "1025Mi"))
    assert memory.value.quota == "memory"
    assert store.usage(UNIT).cpu_millis == 1900 and store.get_task("c") is None


def test_a_task_larger_than_the_whole_quota_is_refused_even_pending(store: Store) -> None:
    with pytest.raises(TaskTooLarge):
        submit(store, "huge", quotas(cpu="1"), start=False, body=spec("2"))
    assert store.get_task("huge") is None


def test_resubmitting_an_existing_task_is_never_refused(store: Store, clock: Clock) -> None:
    limits = quotas(max_active_tasks=1, submissions_per_second=1, submission_burst=1)
    assert submit(store, "a", limits, key="k-a")
    # Full and out of tokens: the same task again is the same task, not a new one.
    assert not submit(store, "a", limits, key="k-a")
    assert not submit(store, "generated-again", limits, key="k-a")
    with pytest.raises(QuotaExceeded):
        submit(store, "b", limits)


def test_the_submission_bucket_lives_in_the_database(store: Store, clock: Clock) -> None:
    limits = quotas(submissions_per_second=0.5, submission_burst=2)
    assert submit(store, "a", limits) and submit(store, "b", limits, start=False)
    # A second replica (another Store on the same database) draws from the same bucket.
    replica = Store(store.url, clock=clock)
    try:
        with pytest.raises(QuotaExceeded) as caught:
            submit(replica, "c", limits)
        assert caught.value.quota == "submissions_per_second"
        assert caught.value.retry_after_seconds == 2
        assert "submissions_per_second 0.5 (burst 2)" in str(caught.value)
        clock.advance(seconds=2)
        assert submit(replica, "c", limits)
        with pytest.raises(QuotaExceeded):
            submit(store, "d", limits)
    finally:
        replica.close()
    assert store.get_task("d") is None


def test_no_quota_no_bookkeeping(store: Store) -> None:
    # Unlimited units (the default) neither lock nor write an admission row.
    with store.counting() as statements:
        assert submit(store, "a", QuotaSettings())
    plain = Store(store.url)
    try:
        with plain.counting() as baseline:
            plain.create_task("b", spec(), status=TaskStatus.SCHEDULING)
    finally:
        plain.close()
    assert statements.value == baseline.value
