from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meridian.store import Store, TaskNotFoundError, Transition
from meridian.tasks.spec import TaskStatus

from .conftest import fetch, make_spec

T0 = datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC)


def transition(seq: int, status: TaskStatus, attempt: int = 1, **fields: Any) -> Transition:
    return Transition(
        task_id=fields.pop("task_id", "etl-1"),
        event_key=fields.pop("event_key", f"{attempt}:{seq}:{status.value}"),
        seq=seq,
        status=status,
        attempt=attempt,
        at=fields.pop("at", T0 + timedelta(seconds=seq)),
        **fields,
    )


@pytest.fixture
def task_store(store: Store) -> Store:
    store.create_task("etl-1", make_spec(), status=TaskStatus.SCHEDULING)
    return store


def test_transition_updates_the_task_and_records_an_event(task_store: Store) -> None:
    summary = {"region": "aws-us-east-1", "reason": "nearest healthy region"}
    assert task_store.record_transition(
        transition(
            0,
            TaskStatus.SCHEDULING,
            region="aws-us-east-1",
            reason="placed",
            placement_summary=summary,
        )
    )
    assert task_store.record_transition(
        transition(1, TaskStatus.RUNNING, job_name="etl-1-a1", reason="pod running")
    )

    task = fetch(task_store, "etl-1")
    assert task.status is TaskStatus.RUNNING
    assert (task.region, task.job_name, task.attempt) == ("aws-us-east-1", "etl-1-a1", 1)
    # Same attempt: the RUNNING transition did not repeat the placement, it is kept.
    assert task.placement_summary == summary
    assert task.updated_at == T0 + timedelta(seconds=1)
    assert task.finished_at is None
    assert task.last_seq == 1

    events = task_store.list_events("etl-1")
    assert [(e.seq, e.status, e.reason) for e in events] == [
        (0, TaskStatus.SCHEDULING, "placed"),
        (1, TaskStatus.RUNNING, "pod running"),
    ]
    assert events[0].placement_summary == summary and all(e.applied for e in events)


def test_retried_transition_changes_nothing(task_store: Store) -> None:
    first = transition(0, TaskStatus.RUNNING, region="r1", details={"rv": "17"})
    assert task_store.record_transition(first)
    before = fetch(task_store, "etl-1")

    # A retried activity sends the same key, even if its payload differs (later `at`).
    retry = first.model_copy(update={"at": first.at + timedelta(seconds=9), "reason": "again"})
    assert not task_store.record_transition(retry)

    assert fetch(task_store, "etl-1") == before
    assert len(task_store.list_events("etl-1")) == 1


def test_older_seq_is_stored_but_does_not_move_the_state_back(task_store: Store) -> None:
    assert task_store.record_transition(
        transition(5, TaskStatus.SUCCEEDED, region="r1", job_name="etl-1-a1", exit_code=0)
    )
    # A replayed RUNNING transition from earlier arrives late.
    assert task_store.record_transition(
        transition(3, TaskStatus.RUNNING, region="r1", job_name="etl-1-a1")
    )

    task = fetch(task_store, "etl-1")
    assert task.status is TaskStatus.SUCCEEDED
    assert task.finished_at == T0 + timedelta(seconds=5)
    assert task.exit_code == 0 and task.last_seq == 5
    events = task_store.list_events("etl-1")
    # Ordered by time: the late event happened earlier.
    assert [(e.seq, e.applied) for e in events] == [(3, False), (5, True)]


def test_new_attempt_clears_the_old_attempts_placement(task_store: Store) -> None:
    task_store.record_transition(
        transition(
            0,
            TaskStatus.RUNNING,
            region="r1",
            job_name="etl-1-a1",
            placement_summary={"region": "r1"},
        )
    )
    task_store.record_transition(
        transition(1, TaskStatus.SCHEDULING, attempt=2, reason="region r1 down", error="lost")
    )
    moving = fetch(task_store, "etl-1")
    assert (moving.attempt, moving.region, moving.job_name) == (2, None, None)
    assert moving.placement_summary is None and moving.error == "lost"

    task_store.record_transition(
        transition(2, TaskStatus.RUNNING, attempt=2, region="r2", job_name="etl-1-a2")
    )
    moved = fetch(task_store, "etl-1")
    assert (moved.region, moved.job_name, moved.error) == ("r2", "etl-1-a2", None)


def test_failed_task_records_error_and_exit_code(task_store: Store) -> None:
    task_store.record_transition(
        transition(4, TaskStatus.FAILED, region="r1", error="exit code 3", exit_code=3)
    )
    task = fetch(task_store, "etl-1")
    assert (task.status, task.error, task.exit_code) == (TaskStatus.FAILED, "exit code 3", 3)
    assert task.finished_at == T0 + timedelta(seconds=4)


def test_transition_for_unknown_task_raises(store: Store) -> None:
    with pytest.raises(TaskNotFoundError):
        store.record_transition(transition(0, TaskStatus.RUNNING, task_id="ghost"))


def test_naive_transition_time_is_rejected() -> None:
    with pytest.raises(ValueError):
        transition(0, TaskStatus.RUNNING, at=datetime(2025, 1, 1))


def test_racing_duplicate_transitions_record_one_event(task_store: Store) -> None:
    racers = 6
    barrier = threading.Barrier(racers)
    results: list[bool] = []
    errors: list[BaseException] = []

    def record(seq: int) -> None:
        barrier.wait()
        try:
            # Half race on the same key, half on distinct keys.
            key = "1:0:RUNNING" if seq % 2 == 0 else f"1:{seq}:RUNNING"
            results.append(
                task_store.record_transition(
                    transition(seq, TaskStatus.RUNNING, event_key=key, region="r1")
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results.count(True) == 1 + racers // 2
    events = task_store.list_events("etl-1")
    assert len(events) == 1 + racers // 2
    assert len({e.event_key for e in events}) == len(events)
    # Whatever the arrival order, the state is that of the highest applied seq.
    assert fetch(task_store, "etl-1").last_seq == max(e.seq for e in events if e.applied)


def test_active_tasks_are_paged_by_id(store: Store) -> None:
    for index in range(7):
        store.create_task(f"a-{index}", make_spec(), status=TaskStatus.SCHEDULING)
    store.create_task("p-0", make_spec(), status=TaskStatus.PENDING)
    for index, region in [(0, "r1"), (1, "r2"), (2, "r1"), (3, "r1")]:
        store.record_transition(
            transition(
                0,
                TaskStatus.RUNNING,
                task_id=f"a-{index}",
                region=region,
                job_name=f"a-{index}-a1",
            )
        )
    store.record_transition(transition(1, TaskStatus.SUCCEEDED, task_id="a-3"))

    seen: list[str] = []
    after = None
    while page := store.list_active_tasks(after_id=after, limit=2):
        seen.extend(ref.id for ref in page)
        after = page[-1].id
    assert seen == ["a-0", "a-1", "a-2", "a-4", "a-5", "a-6"]

    in_r1 = store.list_active_tasks(region="r1")
    assert [(r.id, r.status, r.job_name, r.attempt) for r in in_r1] == [
        ("a-0", TaskStatus.RUNNING, "a-0-a1", 1),
        ("a-2", TaskStatus.RUNNING, "a-2-a1", 1),
    ]

    counts = store.count_tasks_by_status()
    assert counts == {
        "PENDING": 1,
        "SCHEDULING": 3,
        "RUNNING": 3,
        "SUCCEEDED": 1,
        "FAILED": 0,
        "STOPPED": 0,
    }
