"""The running-task sweep starts the workflow of tasks that never got one, and says so
when it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.sweeps import SweepActivities
from meridian.settings import Settings
from meridian.store import Store
from meridian.sweeps.contracts import RecordSweepInput, ResumeUnstartedInput
from meridian.tasks.spec import DataSource, JobSpec, TaskSpec, TaskStatus

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClient:
    """Starts workflows on paper; some ids cannot be started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.closed: set[str] = set()  # ran before and closed (e.g. terminated)
        self.unavailable: set[str] = set()

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **_: Any) -> None:
        if id in self.closed:
            raise WorkflowAlreadyStartedError(id, workflow)
        if id in self.unavailable:
            raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")
        self.started.append(id)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    now = [T0]
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}", clock=lambda: now[0])
    store.migrate()
    yield store
    store.close()


def _spec() -> TaskSpec:
    return TaskSpec(
        name="etl",
        business_unit="ads",
        data_source=DataSource(provider="aws", region="us-east-1"),
        job=JobSpec(image="busybox"),
    )


def _sweep(store: Store, client: FakeClient) -> SweepActivities:
    return SweepActivities(store, cast(Client, client), Settings())


def _inp(**overrides: Any) -> ResumeUnstartedInput:
    return ResumeUnstartedInput(
        **{"older_than_seconds": 30, "at": T0 + timedelta(minutes=5), **overrides}
    )


async def test_every_unstarted_task_is_resumed_not_only_the_first_page(store: Store) -> None:
    ids = [f"t-{n}" for n in range(5)]
    for task_id in ids:
        store.create_task(task_id, _spec(), status=TaskStatus.SCHEDULING)
    client = FakeClient()

    result = await _sweep(store, client).resume_unstarted_tasks(_inp(limit=2))

    assert sorted(client.started) == ids
    assert (result.checked, result.started, result.failed) == (5, 5, 0)


async def test_a_workflow_that_cannot_be_started_is_reported(store: Store) -> None:
    for task_id in ("t-closed", "t-fine", "t-rpc"):
        store.create_task(task_id, _spec(), status=TaskStatus.SCHEDULING)
    client = FakeClient()
    client.closed.add("t-closed")
    client.unavailable.add("t-rpc")
    sweep = _sweep(store, client)

    result = await sweep.resume_unstarted_tasks(_inp())

    assert client.started == ["t-fine"]
    assert (result.checked, result.started, result.failed) == (3, 1, 2)
    # On the task: an event that says why it does not move.
    closed_events = store.list_events("t-closed")
    assert [e.reason for e in closed_events] == [
        "resume sweep could not start the task's workflow: "
        "a workflow with this id already ran and closed"
    ]
    assert "deadline exceeded" in store.list_events("t-rpc")[-1].reason
    assert store.list_events("t-fine") == []
    # The same failure on the next sweep adds no second event.
    await sweep.resume_unstarted_tasks(_inp(at=T0 + timedelta(minutes=6)))
    assert len(store.list_events("t-closed")) == 1

    # On the sweep run (GET /v1/sweeps): a count beside the workflows started.
    sweep.record_sweep(
        RecordSweepInput(
            kind="running-tasks",
            started_at=T0,
            finished_at=T0,
            regions=[],
            resumed=result.started,
            resume_failed=result.failed,
            resume_errors=result.errors,
        )
    )
    run = store.list_sweep_runs()[0]
    assert run.fixed["workflows_started"] == 1
    assert run.found["resume_failed"] == 2
    assert run.error is not None and "t-closed" in run.error and "t-rpc" in run.error
