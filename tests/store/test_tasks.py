from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from meridian.store import Store, TaskConflictError, TaskNotFoundError, spec_hash
from meridian.tasks.spec import TaskKind, TaskSpec, TaskStatus

from .conftest import Clock, fetch, make_spec


def test_create_then_get_returns_the_same_task(store: Store, clock: Clock) -> None:
    spec = make_spec(labels={"team": "risk"})
    outcome = store.create_task("etl-1", spec, status=TaskStatus.PENDING)

    assert outcome.created
    task = fetch(store, "etl-1")
    assert task == outcome.task
    assert task.spec == spec
    assert (task.name, task.business_unit, task.kind) == ("nightly-etl", "payments", "batch")
    assert task.status is TaskStatus.PENDING
    assert task.attempt == 0 and task.region is None and task.finished_at is None
    assert task.created_at == task.updated_at == clock.now
    assert task.spec_hash == spec_hash(spec)
    assert task.version == 1


def test_get_unknown_task_is_none(store: Store) -> None:
    assert store.get_task("nope") is None
    assert store.get_by_idempotency_key("payments", "nope") is None
    assert store.get_unit_task("payments", "nope") is None
    assert store.find_tasks("nope") == []


def test_same_id_same_spec_is_idempotent(store: Store) -> None:
    first = store.create_task("etl-1", make_spec(), status=TaskStatus.SCHEDULING)
    # Equal after validation: explicit defaults hash the same as omitted ones.
    again = store.create_task(
        "etl-1", make_spec(retry={"max_attempts": 3}), status=TaskStatus.SCHEDULING
    )
    assert first.created and not again.created
    assert again.task == first.task


def test_same_id_different_spec_conflicts(store: Store) -> None:
    store.create_task("etl-1", make_spec(), status=TaskStatus.PENDING)
    with pytest.raises(TaskConflictError) as caught:
        store.create_task("etl-1", make_spec(name="other"), status=TaskStatus.PENDING)
    assert caught.value.task_id == "etl-1"
    assert fetch(store, "etl-1").name == "nightly-etl"


def test_idempotency_key_maps_retries_to_the_first_task(store: Store) -> None:
    first = store.create_task(
        "gen-aaa", make_spec(), status=TaskStatus.PENDING, idempotency_key="K-1"
    )
    # A retried keyed request arrives with a freshly generated id.
    retry = store.create_task(
        "gen-bbb", make_spec(), status=TaskStatus.PENDING, idempotency_key="K-1"
    )
    assert not retry.created and retry.task.id == "gen-aaa"
    assert store.get_task("gen-bbb") is None
    assert store.get_by_idempotency_key("payments", "K-1") == first.task
    # Keys are compared exactly, case included.
    other = store.create_task(
        "gen-ccc", make_spec(), status=TaskStatus.PENDING, idempotency_key="k-1"
    )
    assert other.created

    with pytest.raises(TaskConflictError):
        store.create_task(
            "gen-ddd", make_spec(name="changed"), status=TaskStatus.PENDING, idempotency_key="K-1"
        )


def test_public_ids_and_idempotency_keys_are_scoped_per_business_unit(store: Store) -> None:
    payments, risk = make_spec(), make_spec(business_unit="risk")
    # Keys as the service derives them (meridian/tasks/keys.py): unique across units.
    mine = store.create_task(
        "payments.nightly",
        payments,
        status=TaskStatus.PENDING,
        public_id="nightly",
        idempotency_key="K",
    )
    theirs = store.create_task(
        "risk.nightly", risk, status=TaskStatus.PENDING, public_id="nightly", idempotency_key="K"
    )
    assert mine.created and theirs.created
    assert store.get_unit_task("payments", "nightly") == mine.task
    assert store.get_unit_task("risk", "nightly") == theirs.task
    assert store.get_by_idempotency_key("risk", "K") == theirs.task
    assert [t.id for t in store.find_tasks("nightly")] == ["payments.nightly", "risk.nightly"]
    assert store.find_tasks("nightly", business_unit="risk") == [theirs.task]
    # The key names the task too (what an admin may pass), within a unit or not.
    assert store.find_tasks("risk.nightly") == [theirs.task]
    assert store.find_tasks("risk.nightly", business_unit="payments") == []

    # The unit's own id again is that task; another unit's key is never handed out.
    again = store.create_task(
        "payments.nightly", payments, status=TaskStatus.PENDING, public_id="nightly"
    )
    assert not again.created and again.task == mine.task
    with pytest.raises(TaskConflictError):
        store.create_task("risk.nightly", payments, status=TaskStatus.PENDING, public_id="other")


@pytest.mark.parametrize("same_spec", [True, False])
def test_racing_creates_yield_exactly_one_task(store: Store, same_spec: bool) -> None:
    racers = 8
    barrier = threading.Barrier(racers)
    created: list[bool] = []
    conflicts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        spec = make_spec() if same_spec else make_spec(name=f"racer-{index}")
        barrier.wait()
        try:
            outcome = store.create_task(
                "race-1", spec, status=TaskStatus.PENDING, idempotency_key="race-key"
            )
            with lock:
                created.append(outcome.created)
        except TaskConflictError:
            with lock:
                conflicts.append(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert created.count(True) == 1
    if same_spec:
        assert len(created) == racers
    else:
        assert len(conflicts) == racers - 1
    assert store.count_tasks_by_status()["PENDING"] == 1


def test_update_spec_replaces_spec_and_bumps_version(store: Store, clock: Clock) -> None:
    store.create_task("etl-1", make_spec(), status=TaskStatus.RUNNING)
    later = clock.advance(seconds=5)
    new_spec = make_spec(name="renamed", job={"image": "registry.local/etl:1.3"})

    updated = store.update_spec("etl-1", new_spec)

    assert updated.spec == new_spec and updated.name == "renamed"
    assert updated.spec_hash == spec_hash(new_spec)
    assert updated.version == 2 and updated.updated_at == later
    assert fetch(store, "etl-1") == updated
    # Applying the same spec again (a retried activity) changes nothing.
    assert store.update_spec("etl-1", new_spec).version == 2
    with pytest.raises(TaskNotFoundError):
        store.update_spec("missing", new_spec)


def _seed(store: Store, clock: Clock, count: int, spec_for: Callable[[int], TaskSpec]) -> None:
    for index in range(count):
        store.create_task(f"t-{index:03d}", spec_for(index), status=TaskStatus.PENDING)
        # Two tasks share each timestamp, so the id must break ties.
        if index % 2:
            clock.advance(milliseconds=1)


def test_cursor_pages_have_no_duplicates_and_no_gaps(store: Store, clock: Clock) -> None:
    _seed(store, clock, 23, lambda i: make_spec())
    expected = [task.id for task in store.list_tasks(limit=1000).items]
    assert len(expected) == 23
    assert expected == sorted(expected, reverse=True)  # newest first, id desc on ties

    for page_size in (1, 2, 5, 7, 23, 50):
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_tasks(limit=page_size, cursor=cursor)
            assert len(page.items) <= page_size
            seen.extend(task.id for task in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, page_size


def test_pages_stay_consistent_when_tasks_arrive_meanwhile(store: Store, clock: Clock) -> None:
    _seed(store, clock, 6, lambda i: make_spec())
    first = store.list_tasks(limit=3)
    clock.advance(seconds=1)
    store.create_task("t-new", make_spec(), status=TaskStatus.PENDING)
    second = store.list_tasks(limit=3, cursor=first.next_cursor)
    assert [t.id for t in first.items + second.items] == [f"t-{i:03d}" for i in range(5, -1, -1)]


def test_list_filters(store: Store, clock: Clock) -> None:
    _seed(
        store,
        clock,
        12,
        lambda i: make_spec(
            business_unit="payments" if i % 3 else "search",
            kind="resident" if i % 4 == 0 else "batch",
        ),
    )
    store.create_task("other", make_spec(business_unit="ops"), status=TaskStatus.RUNNING)

    search = store.list_tasks(business_unit="search")
    assert {t.id for t in search.items} == {"t-000", "t-003", "t-006", "t-009"}
    resident = store.list_tasks(kind=TaskKind.RESIDENT)
    assert {t.id for t in resident.items} == {"t-000", "t-004", "t-008"}
    # Filters combine, and the cursor pages within them.
    first = store.list_tasks(kind=TaskKind.BATCH, business_unit="payments", limit=4)
    rest = store.list_tasks(kind=TaskKind.BATCH, business_unit="payments", cursor=first.next_cursor)
    assert [t.id for t in first.items] == ["t-011", "t-010", "t-007", "t-005"]
    assert [t.id for t in rest.items] == ["t-002", "t-001"]
    assert rest.next_cursor is None
    assert [t.id for t in store.list_tasks(status=TaskStatus.RUNNING).items] == ["other"]
    assert store.list_tasks(region="nowhere").items == []


def test_invalid_cursor_and_limit_are_value_errors(store: Store) -> None:
    for cursor in ("", "not-base64!", "bm90IGpzb24", "WzEsMl0", "WyJ4IiwiYSJd"):
        with pytest.raises(ValueError, match="invalid cursor"):
            store.list_tasks(cursor=cursor)
    with pytest.raises(ValueError):
        store.list_tasks(limit=0)
