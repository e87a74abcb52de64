"""The resume sweep's view of the store: tasks no workflow ever placed, and notes on them."""

from __future__ import annotations

from datetime import timedelta

from meridian.store import Store, Transition
from meridian.tasks.spec import TaskStatus

from .conftest import Clock, fetch, make_spec


def _placed(store: Store, task_id: str, clock: Clock) -> None:
    store.record_transition(
        Transition(
            task_id=task_id,
            event_key="1",
            seq=1,
            status=TaskStatus.SCHEDULING,
            attempt=1,
            region="aws-us-east-1",
            job_name=f"{task_id}-a1",
            at=clock.now,
        )
    )


def test_unstarted_tasks_are_paged_through_in_id_order(store: Store, clock: Clock) -> None:
    for n in range(7):
        store.create_task(f"t-{n}", make_spec(), status=TaskStatus.SCHEDULING)
    store.create_task("t-pending", make_spec(), status=TaskStatus.PENDING)  # not started on purpose
    _placed(store, "t-3", clock)  # a workflow placed it: not unstarted
    clock.advance(seconds=60)
    store.create_task("t-young", make_spec(), status=TaskStatus.SCHEDULING)  # the API may start it
    cutoff = clock.now - timedelta(seconds=30)

    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.list_unstarted_tasks(created_before=cutoff, after_id=after, limit=2)
        seen.extend(task.id for task in page)
        if len(page) < 2:
            break
        after = page[-1].id
    assert seen == ["t-0", "t-1", "t-2", "t-4", "t-5", "t-6"]
    assert store.list_unstarted_tasks(created_before=cutoff, limit=10)[0].spec == make_spec()


def test_a_note_on_a_task_is_history_that_moves_nothing(store: Store, clock: Clock) -> None:
    store.create_task("t-1", make_spec(), status=TaskStatus.SCHEDULING)
    _placed(store, "t-1", clock)
    before = fetch(store, "t-1")
    clock.advance(seconds=5)

    assert store.add_task_note("t-1", key="resume-failed:x", reason="could not start", at=clock.now)
    assert not store.add_task_note("t-1", key="resume-failed:x", reason="again", at=clock.now)

    note = store.list_events("t-1")[-1]
    assert note.reason == "could not start"
    assert (note.status, note.attempt, note.region) == (
        TaskStatus.SCHEDULING,
        1,
        "aws-us-east-1",
    )
    assert not note.applied
    after = fetch(store, "t-1")
    assert (after.status, after.attempt, after.last_seq) == (
        before.status,
        before.attempt,
        before.last_seq,
    )
    # The next transition still applies.
    store.record_transition(
        Transition(
            task_id="t-1", event_key="2", seq=2, status=TaskStatus.RUNNING, attempt=1, at=clock.now
        )
    )
    assert fetch(store, "t-1").status is TaskStatus.RUNNING
