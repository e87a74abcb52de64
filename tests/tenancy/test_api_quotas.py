"""Quotas as a client meets them: 429 with Retry-After and a message naming the quota and
its numbers, nothing created; an idempotent resubmission still answers 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.routes import tasks
from meridian.tenancy.quotas import QuotaSettings
from tests.api.stage import Stage, staged
from tests.support import token_headers

ADS = "ads"


def body(task_id: str, cpu: str = "1", **overrides: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "etl",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", "resources": {"cpu": cpu, "memory": "1Gi"}},
        **overrides,
    }


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with staged(tmp_path, ADS) as stage:
        stage.service.settings = stage.service.settings.model_copy(
            update={
                "quotas": QuotaSettings.model_validate(
                    {"units": {ADS: {"max_active_tasks": 2, "cpu": "4"}}, "retry_after_seconds": 15}
                )
            }
        )
        yield stage


async def test_over_max_active_tasks_is_429_with_retry_after(stage: Stage, tmp_path: Path) -> None:
    http = stage.http
    for task_id in ("a", "b"):
        assert (await http.post("/v1/tasks", json=body(task_id))).status_code == 201
    refused = await http.post("/v1/tasks", json=body("c"))
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "15"
    assert refused.json() == {
        "detail": "business unit ads: 2 active tasks, quota max_active_tasks 2",
        "quota": "max_active_tasks",
    }
    assert stage.store.find_tasks("c") == []
    assert stage.temporal.started == ["ads.a", "ads.b"]
    # The same task again is the same task: 200, not refused by the quota it fills.
    again = await http.post("/v1/tasks", json=body("a"))
    assert again.status_code == 200 and again.json()["id"] == "a"
    # Another unit has its own quota.
    other = await http.post("/v1/tasks", json=body("c"), headers=token_headers(tmp_path, "bank"))
    assert other.status_code == 201


async def test_starting_a_pending_task_over_the_quota_is_429(stage: Stage) -> None:
    http = stage.http
    assert (await http.post("/v1/tasks", json=body("a", cpu="3500m"))).status_code == 201
    assert (await http.post("/v1/tasks", json=body("p", start=False))).status_code == 201
    refused = await http.post("/v1/tasks/p/start")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "active tasks request cpu 3500m, this task 1, quota cpu 4" in refused.json()["detail"]
    task = await http.get("/v1/tasks/p")
    assert task.json()["status"] == "PENDING"
    assert stage.temporal.started == ["ads.a"]


async def test_a_task_larger_than_the_whole_quota_is_422_naming_the_field(stage: Stage) -> None:
    refused = await stage.http.post("/v1/tasks", json=body("huge", cpu="5"))
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "job", "resources", "cpu"]
    assert "quota cpu 4" in error["msg"]
    assert stage.store.find_tasks("huge") == []


async def test_the_submission_rate_is_429_with_the_seconds_to_wait(stage: Stage) -> None:
    stage.service.settings = stage.service.settings.model_copy(
        update={
            "quotas": QuotaSettings.model_validate(
                {"default": {"submissions_per_second": 0.1, "submission_burst": 1}}
            )
        }
    )
    assert (await stage.http.post("/v1/tasks", json=body("a", start=False))).status_code == 201
    refused = await stage.http.post("/v1/tasks", json=body("b", start=False))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.json()["quota"] == "submissions_per_second"
    assert "submissions_per_second 0.1 (burst 1)" in refused.json()["detail"]


def test_the_429_is_documented_where_it_can_happen() -> None:
    app = FastAPI()
    app.include_router(tasks.router)
    paths = app.openapi()["paths"]
    for method, path in (("post", "/v1/tasks"), ("post", "/v1/tasks/{task_id}/start")):
        documented = paths[path][method]["responses"]["429"]
        assert "Retry-After" in documented["headers"], path


async def test_starting_a_task_larger_than_the_whole_quota_is_409(stage: Stage) -> None:
    assert (await stage.http.post("/v1/tasks", json=body("p", cpu="3", start=False))).is_success
    # The quota shrank below the task since it was submitted: it must be modified first.
    stage.service.settings = stage.service.settings.model_copy(
        update={"quotas": QuotaSettings.model_validate({"units": {ADS: {"cpu": "2"}}})}
    )
    refused = await stage.http.post("/v1/tasks/p/start")
    assert refused.status_code == 409
    assert "cpu 3 is more than business unit ads's whole quota cpu 2" in refused.json()["detail"]
    assert stage.temporal.started == []
