"""Start and stop racing on a PENDING task: only the write that moves the task out of
PENDING decides what happens, so a task the user stopped never gets a workflow (or a Job),
and a stop that lost to a start still reaches the workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meridian.store import Store, Transition
from meridian.store.records import TaskRecord
from meridian.tasks.contracts import SIGNAL_STOP
from meridian.tasks.service import TaskService, TaskStateConflict
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.api.stage import FakeClient, task_service
from tests.support import mariadb_available, mariadb_database

SPEC = TaskSpec.model_validate(
    {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
    }
)


@pytest.fixture(params=["sqlite", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meridian.db'}"
        with Store(url) as store:
            store.migrate()
            yield store
        return
    if not mariadb_available():
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306 (.ci/run starts it)")
    with mariadb_database("meridian_start") as url, Store(url) as store:
        store.migrate()
        yield store


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def service(store: Store, client: FakeClient) -> TaskService:
    return task_service(store, client)


def transition(task_id: str, key: str, status: TaskStatus) -> Transition:
    return Transition(
        task_id=task_id, event_key=key, seq=0, status=status, attempt=0, at=datetime.now(UTC)
    )


def test_conditional_transition_applies_only_from_the_expected_status(store: Store) -> None:
    store.create_task("t-cas", SPEC, status=TaskStatus.PENDING)
    stop = transition("t-cas", "stop-pending", TaskStatus.STOPPED)
    start = transition("t-cas", "start", TaskStatus.SCHEDULING)
    assert store.transition_from(TaskStatus.PENDING, stop) is True
    assert store.transition_from(TaskStatus.PENDING, start) is False
    task = store.get_task("t-cas")
    assert task is not None and task.status is TaskStatus.STOPPED
    # The refused start left no trace: the history says only what happened.
    assert [e.event_key for e in store.list_events("t-cas")] == ["stop-pending"]


def interleave(
    service: TaskService, task_id: str, other: Callable[[], Any]
) -> Callable[[str], TaskRecord | None]:
    """A get_task whose first read is followed at once by `other` (the racing request),
    as if it had landed between the caller's read and its write."""
    read = service.store.get_task
    loop = asyncio.get_running_loop()
    pending = [other]

    def get_task(wanted: str) -> TaskRecord | None:
        record = read(wanted)
        if wanted == task_id and pending:
            asyncio.run_coroutine_threadsafe(pending.pop()(), loop).result()
        return record

    return get_task


async def test_a_stop_that_wins_the_race_keeps_the_task_stopped(
    service: TaskService, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.store.create_task("t-race", SPEC, status=TaskStatus.PENDING)
    # start reads the task PENDING; the user's stop lands before start writes.
    monkeypatch.setattr(
        service.store, "get_task", interleave(service, "t-race", lambda: service.stop("t-race"))
    )
    with pytest.raises(TaskStateConflict, match="STOPPED"):
        await service.start("t-race")
    assert client.started == []  # no workflow, so no Job
    task = await service.get("t-race")
    assert task.status is TaskStatus.STOPPED


async def test_a_stop_that_loses_the_race_reaches_the_workflow(
    service: TaskService, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.store.create_task("t-race", SPEC, status=TaskStatus.PENDING)
    # stop reads the task PENDING; the user's start lands (and starts the workflow) first.
    monkeypatch.setattr(
        service.store, "get_task", interleave(service, "t-race", lambda: service.start("t-race"))
    )
    await service.stop("t-race")
    assert client.started == ["t-race"]
    assert client.signals == [("t-race", SIGNAL_STOP)]  # the workflow stops its Job


async def test_start_of_a_pending_task_starts_its_workflow_once(
    service: TaskService, client: FakeClient
) -> None:
    service.store.create_task("t-once", SPEC, status=TaskStatus.PENDING)
    started = await service.start("t-once")
    assert started.status is TaskStatus.SCHEDULING
    with pytest.raises(TaskStateConflict, match="SCHEDULING"):
        await service.start("t-once")
    assert client.started == ["t-once"]
