"""TaskWorkflow carries each attempt's namespace: where its Job was created is where it is
read, deleted and fenced, including Jobs created before units had namespaces."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from meridian.kube.contracts import FailureKind, JobPhase
from meridian.tasks.contracts import (
    QUERY_STATE,
    SIGNAL_INFRA_FAILURE,
    SIGNAL_JOB_STATUS,
    SIGNAL_STOP,
    InfraFailure,
    StopRequest,
    TaskProgress,
    TaskWorkflowResult,
)
from meridian.tasks.spec import TaskStatus, job_name_for
from tests.workflows.fakes import FakeWorld, obs, spec, start
from tests.workflows.test_task_workflow import Harness, _wait

AWS, AZURE = "aws-us-east-1", "azure-eastus"


def node_lost(task_id: str, attempt: int, region: str) -> Any:
    return obs(
        task_id,
        attempt,
        region,
        JobPhase.FAILED,
        reason="NodeLost",
        failure_kind=FailureKind.INFRASTRUCTURE,
        resource_version=4,
    )


async def test_every_attempt_is_followed_in_its_units_namespace(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(business_unit="search")
        await h.created(1)
        await handle.signal(SIGNAL_JOB_STATUS, node_lost(handle.id, 1, AWS))
        await h.created(2)
        state = await handle.query(QUERY_STATE, result_type=TaskProgress)
        assert state.namespace == "meridian-search"
        await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
        result: TaskWorkflowResult = await handle.result()
    assert result.status is TaskStatus.STOPPED
    deletes = [(r.region, r.attempt, r.namespace) for r in world.refs]
    assert deletes == [(AWS, 1, "meridian-search"), (AZURE, 2, "meridian-search")]


async def test_a_job_from_before_namespaces_is_deleted_where_it_runs(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A workflow whose Job was created before this change keeps it in "meridian"; its
    next attempt goes to the unit's namespace."""
    world = FakeWorld()
    task_id = "t-legacy-ns"
    name = job_name_for(task_id, 1)
    world.jobs[(AWS, name)] = JobPhase.RUNNING
    # As a progress carried over by continue-as-new from before namespaces: none named.
    old = TaskProgress.model_validate(
        {"status": "RUNNING", "attempt": 1, "seq": 3, "region": AWS, "job_name": name}
    )
    async with Harness(time_skipping_env, world) as h:
        handle = await start(
            time_skipping_env.client, h.queue, spec(), progress=old, task_id=task_id
        )
        await handle.signal(SIGNAL_JOB_STATUS, node_lost(task_id, 1, AWS))
        await h.created(1)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
        await handle.result()
    assert [(r.attempt, r.namespace) for r in world.refs] == [(1, "meridian"), (2, "meridian-ads")]


async def test_a_job_fenced_off_in_a_region_down_names_its_namespace(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        world.unreachable.add(AWS)
        await handle.signal(
            SIGNAL_INFRA_FAILURE, InfraFailure(region=AWS, reason="down", region_down=True)
        )
        await h.created(2)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
        await handle.result()
    [orphan] = world.orphan_records
    assert (orphan.region, orphan.attempt, orphan.namespace) == (AWS, 1, "meridian-ads")


async def test_the_namespace_is_prepared_before_the_create_which_names_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Prepared by its own activity (its own budget), then the create lands exactly
    there: a create cut short (here by a cancel) is fenced off naming that namespace,
    so nothing has to look for it by labels."""
    world = FakeWorld()
    creating = world.hold("create_job")
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start(business_unit="search")
        await _wait(lambda: "create_job" in world.waiting, time_skipping_env)
        assert world.ensured == [(AWS, "search")]
        await handle.cancel()
        await _wait(lambda: world.orphan_records != [], time_skipping_env)
        creating.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    fenced = world.orphan_records[0]
    assert (fenced.region, fenced.attempt, fenced.namespace) == (AWS, 1, "meridian-search")


async def test_a_region_that_cannot_prepare_the_namespace_is_left_without_spending_an_attempt(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Even a refusal there (its RBAC) is the region's, not the task's: no Job was tried,
    so the task's first attempt runs in the next region."""
    world = FakeWorld(namespace_refused={AWS})
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
        await handle.result()
    assert world.created == [(AZURE, job_name_for(handle.id, 1))]
    assert world.ensured == [(AZURE, "ads")]
    reasons = [r.reason or "" for r in world.records]
    assert any(r.startswith(f"could not prepare namespace in {AWS}") for r in reasons), reasons
    assert world.orphans == []  # nothing was created in AWS, so nothing to fence


async def test_a_namespace_the_unit_worker_has_prepared_is_not_prepared_again(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The second task of a unit in a region goes straight to its create: no namespace
    step (three history events and a round trip to the region's queue), and its Job
    is followed in the namespace the unit worker named."""
    world = FakeWorld()
    async with Harness(time_skipping_env, world) as h:
        first = await h.start(business_unit="search")
        await h.created(1)
        second = await h.start(business_unit="search")
        await h.created(2)
        state = await second.query(QUERY_STATE, result_type=TaskProgress)
        assert (state.attempt, state.namespace) == (1, "meridian-search")
        for handle in (first, second):
            await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
            await handle.result()
        history = await second.fetch_history()
    assert world.ensured == [(AWS, "search")]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "ensure_namespace" not in scheduled
    assert scheduled[0] == "create_job"
    # Each stop deletes its Job where it was created (reads and deletes alike).
    deleted = {(r.task_id, r.namespace) for r in world.refs}
    assert deleted == {(first.id, "meridian-search"), (second.id, "meridian-search")}


async def test_a_create_refused_for_its_namespace_spends_no_attempt(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Refused (not prepared), then the region cannot prepare it: the task's first
    attempt runs in the next region, and nothing in the first needs fencing."""
    world = FakeWorld(namespace_refused={AWS})
    async with Harness(time_skipping_env, world) as h:
        handle = await h.start()
        await h.created(1)
        state = await handle.query(QUERY_STATE, result_type=TaskProgress)
        await handle.signal(SIGNAL_STOP, StopRequest(reason="done"))
        await handle.result()
    assert (state.attempt, state.region) == (1, AZURE)
    assert world.created == [(AZURE, job_name_for(handle.id, 1))]
    assert world.orphans == []
    assert all(r.attempt in (0, 1) for r in world.records)
    refused = [r for r in world.records if (r.reason or "").startswith("could not prepare")]
    assert [(r.attempt, r.region) for r in refused] == [(0, None)]
