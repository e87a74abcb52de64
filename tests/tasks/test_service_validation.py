"""TaskService.submit and modify do all the checking of a body, raising SpecInvalid
naming the field: nothing is stored and no workflow starts for a body they refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meridian.store import Store
from meridian.tasks.service import SpecInvalid, TaskService
from meridian.tasks.spec import ENV_ENTRIES_MAX, TaskPatch, TaskSpec, TaskStatus
from tests.api.stage import FakeClient, task_service


def spec(**overrides: Any) -> TaskSpec:
    body: dict[str, Any] = {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
    }
    return TaskSpec.model_validate(body | overrides)


@pytest.fixture
def temporal() -> FakeClient:
    return FakeClient()


@pytest.fixture
def service(tmp_path: Path, temporal: FakeClient) -> Iterator[TaskService]:
    with Store(f"sqlite:///{tmp_path / 'meridian.db'}") as store:
        store.migrate()
        yield task_service(store, temporal)


def locs(exc: SpecInvalid) -> list[tuple[Any, ...]]:
    return [tuple(error["loc"]) for error in exc.errors]


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        (spec(data_source={"provider": "aws", "region": "mars-1"}), ("data_source", "region")),
        (spec(placement={"regions": ["nowhere-1"]}), ("placement", "regions", 0)),
        (
            spec(job={"image": "b", "env": {f"E{i}": "" for i in range(ENV_ENTRIES_MAX + 1)}}),
            ("job", "env"),
        ),
    ],
)
async def test_submit_refuses_a_bad_spec_and_stores_nothing(
    service: TaskService, temporal: FakeClient, bad: TaskSpec, loc: tuple[Any, ...]
) -> None:
    with pytest.raises(SpecInvalid) as info:
        await service.submit(bad, task_id="t-bad", start=True, idempotency_key=None)
    assert locs(info.value) == [loc]
    assert service.store.find_tasks("t-bad") == []
    assert temporal.started == []


async def test_modify_names_null_fields_and_bad_merged_values(service: TaskService) -> None:
    service.store.create_task("t-1", spec(), status=TaskStatus.PENDING)
    with pytest.raises(SpecInvalid) as info:
        await service.modify("t-1", TaskPatch.model_validate({"retry": None}))
    assert locs(info.value) == [("retry",)]
    memory = TaskPatch.model_validate({"job": {"resources": {"memory": "-1Gi"}}})
    with pytest.raises(SpecInvalid) as info:
        await service.modify("t-1", memory)
    assert locs(info.value) == [("job", "resources", "memory")]
    task = await service.get("t-1")
    assert task.spec == spec()


async def test_modify_does_not_judge_placement_it_did_not_change(service: TaskService) -> None:
    # Pinned to a region the deployment has since dropped: its labels can still change.
    service.store.create_task(
        "t-1", spec(placement={"region": "gone-1"}), status=TaskStatus.PENDING
    )
    task = await service.modify("t-1", TaskPatch.model_validate({"labels": {"team": "x"}}))
    assert task.spec.labels == {"team": "x"}
