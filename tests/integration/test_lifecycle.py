"""The task lifecycle end to end: REST → Temporal → kubesim → MariaDB, all real."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from meridian.tasks.keys import task_key
from meridian.tasks.spec import job_name_for
from tests.integration.harness import Engine, task_body

TEMPORAL = str(Path(sys.executable).parent / "temporal")


def uid(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def key_of(task_id: str, business_unit: str = "ads") -> str:
    """The workflow id of the unit's task `task_id`: what Temporal and the Jobs' labels
    know it by (task_body's unit is ads)."""
    return task_key(business_unit, task_id)


def jobs_of(engine: Engine, task_id: str) -> dict[str, list[Any]]:
    """Every region's Jobs of a task (`task_id`: its workflow id), read with the official
    client."""
    found: dict[str, list[Any]] = {}
    for region in engine.regions.names:
        api = k8s_config.new_client_from_config(
            config_file=engine.settings.kubeconfig, context=region
        )
        try:
            # In every namespace: a Job left anywhere (its unit's or the services') counts.
            jobs = k8s.BatchV1Api(api).list_job_for_all_namespaces(
                label_selector=f"meridian.io/task-id={task_id}"
            )
            if jobs.items:
                found[region] = list(jobs.items)
        finally:
            api.close()
    return found


def temporal_cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TEMPORAL, *args, "--address", engine.settings.temporal_address],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_submit_runs_to_success(engine: Engine) -> None:
    task_id = uid()
    response = await engine.submit(task_body(id=task_id))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "SCHEDULING"
    assert (response.json()["id"], response.json()["workflow_id"]) == (task_id, f"ads.{task_id}")
    running = await engine.wait_status(task_id, "RUNNING", "SUCCEEDED")
    assert running["region"] == "aws-us-east-1"  # data in aws us-east-1
    done = await engine.wait_status(task_id, "SUCCEEDED")
    assert done["attempt"] == 1
    assert done["job_name"] == job_name_for(key_of(task_id), 1)
    assert done["finished_at"] is not None
    assert done["placement"]["region"] == "aws-us-east-1"
    assert done["placement"]["reason"]
    events = (await engine.http.get(f"/v1/tasks/{task_id}/events")).json()["items"]
    statuses = [e["status"] for e in events]
    assert statuses[0] == "SCHEDULING" and statuses[-1] == "SUCCEEDED"
    assert "RUNNING" in statuses
    # The Job carries its fencing token in labels and env.
    jobs = jobs_of(engine, key_of(task_id))
    if jobs:  # the job sweep may already have cleaned it up
        job = jobs["aws-us-east-1"][0]
        assert job.metadata.labels["meridian.io/attempt"] == "1"
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
        assert env["MERIDIAN_ATTEMPT"] == "1"


async def test_search_attributes_filter_in_temporal(engine: Engine) -> None:
    task_id = uid()
    await engine.submit(task_body(id=task_id, business_unit="search-bu"))
    await engine.wait_status(task_id, "SUCCEEDED")
    for _ in range(50):  # visibility is eventually consistent
        found = [
            w.id
            async for w in engine.client.list_workflows(
                "MeridianBusinessUnit = 'search-bu' AND MeridianStatus = 'SUCCEEDED'"
            )
        ]
        if key_of(task_id, "search-bu") in found:
            break
        await asyncio.sleep(0.2)
    assert key_of(task_id, "search-bu") in found


async def test_exit_code_failure_retries_then_fails(engine: Engine) -> None:
    task_id = uid()
    body = task_body(id=task_id, retry={"max_attempts": 2, "backoff_seconds": 0.2})
    body["job"]["annotations"] = {"kubesim.io/duration": "300ms", "kubesim.io/exit-code": "3"}
    assert (await engine.submit(body)).status_code == 201
    failed = await engine.wait_status(task_id, "FAILED", timeout=60)
    assert failed["attempt"] == 2
    assert failed["exit_code"] == 3
    assert "exit code 3" in failed["error"]
    assert failed["region"] == "aws-us-east-1"  # an exit code is no reason to move


async def test_stop_over_rest_deletes_job(engine: Engine) -> None:
    task_id = uid()
    body = task_body(id=task_id)
    body["job"]["annotations"] = {"kubesim.io/duration": "60s"}
    await engine.submit(body)
    await engine.wait_status(task_id, "RUNNING")
    stopped = (await engine.http.post(f"/v1/tasks/{task_id}/stop")).json()
    assert stopped["status"] == "STOPPED"
    again = await engine.http.post(f"/v1/tasks/{task_id}/stop")
    assert again.status_code == 200 and again.json()["status"] == "STOPPED"  # idempotent
    for _ in range(30):
        if not jobs_of(engine, key_of(task_id)):
            break
        await asyncio.sleep(0.2)
    assert jobs_of(engine, key_of(task_id)) == {}


async def test_temporal_cli_cancel_and_signal_stop(engine: Engine) -> None:
    cancelled, signalled = uid(), uid()
    for task_id in (cancelled, signalled):
        body = task_body(id=task_id)
        body["job"]["annotations"] = {"kubesim.io/duration": "60s"}
        await engine.submit(body)
    for task_id in (cancelled, signalled):
        await engine.wait_status(task_id, "RUNNING")
    # The temporal CLI takes the workflow id (the API's `workflow_id`), not the task id.
    result = temporal_cli(engine, "workflow", "cancel", "--workflow-id", key_of(cancelled))
    assert result.returncode == 0, result.stderr
    result = temporal_cli(
        engine,
        "workflow",
        "signal",
        "--workflow-id",
        key_of(signalled),
        "--name",
        "stop",
        "--input",
        '{"reason": "ops said so"}',
    )
    assert result.returncode == 0, result.stderr
    for task_id in (cancelled, signalled):
        task = await engine.wait_status(task_id, "STOPPED")
        assert task["status"] == "STOPPED"
    assert jobs_of(engine, key_of(cancelled)) == {}
    assert jobs_of(engine, key_of(signalled)) == {}
    events = (await engine.http.get(f"/v1/tasks/{signalled}/events")).json()["items"]
    assert events[-1]["reason"] == "ops said so"


async def test_modify_running_task_replaces_its_job(engine: Engine) -> None:
    task_id = uid()
    body = task_body(id=task_id)
    body["job"]["annotations"] = {"kubesim.io/duration": "60s"}
    await engine.submit(body)
    await engine.wait_status(task_id, "RUNNING")
    response = await engine.http.patch(
        f"/v1/tasks/{task_id}",
        json={"job": {"image": "busybox:1.37", "annotations": {"kubesim.io/duration": "1s"}}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["job"]["image"] == "busybox:1.37"
    done = await engine.wait_status(task_id, "SUCCEEDED", timeout=60)
    assert done["attempt"] == 2
    bad = await engine.http.patch(f"/v1/tasks/{task_id}", json={"name": "late"})
    assert bad.status_code == 409


async def test_idempotent_submit(engine: Engine) -> None:
    task_id = uid()
    body = task_body(id=task_id, start=False)
    first = await engine.submit(body)
    assert first.status_code == 201 and first.json()["status"] == "PENDING"
    second = await engine.submit(body)
    assert second.status_code == 200 and second.json()["id"] == task_id
    conflict = await engine.submit(task_body(id=task_id, start=False, name="other"))
    assert conflict.status_code == 409
    key = uid("key")
    a = await engine.submit(task_body(start=False), headers={"Idempotency-Key": key})
    b = await engine.submit(task_body(start=False), headers={"Idempotency-Key": key})
    assert a.status_code == 201 and b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    started = await engine.http.post(f"/v1/tasks/{task_id}/start")
    assert started.status_code == 200
    await engine.wait_status(task_id, "SUCCEEDED")
    assert (await engine.http.post(f"/v1/tasks/{task_id}/start")).status_code == 409
    assert len(jobs_of(engine, key_of(task_id)).get("aws-us-east-1", [])) <= 1


async def test_longest_id_runs_with_a_valid_job_name(engine: Engine) -> None:
    task_id = uid("long-" + "x" * 47)
    assert len(task_id) == 63  # the longest id the API takes
    response = await engine.submit(task_body(id=task_id))
    assert response.status_code == 201, response.text
    done = await engine.wait_status(task_id, "SUCCEEDED")
    assert done["job_name"] == job_name_for(done["workflow_id"], 1)
    assert len(done["workflow_id"]) <= 63  # "ads." + 63 characters: cut and hashed
    assert len(done["job_name"]) <= 63 and done["job_name"] != f"{task_id}-a1"


async def test_bad_input_names_the_field_and_creates_nothing(engine: Engine) -> None:
    before = (await engine.http.get("/v1/tasks", params={"limit": 500})).json()["items"]
    cases: list[tuple[dict[str, Any], str]] = [
        (task_body(data_source={"provider": "oracle", "region": "x"}), "provider"),
        (task_body(data_source={"provider": "aws", "region": "mars-1"}), "region"),
        (task_body(job={"image": "busybox", "resources": {"cpu": "lots"}}), "cpu"),
        (task_body(job={"image": "   "}), "image"),
        (task_body(id="Not_A_Label"), "id"),
        (task_body(id="x" * 64), "id"),
        (task_body(job={"image": "busybox", "status_port": 8080}), "status_port"),
        (task_body(kind="daemon"), "kind"),
    ]
    for body, field in cases:
        response = await engine.submit(body)
        assert response.status_code == 422, (field, response.text)
        assert field in response.text, (field, response.text)
    unknown = await engine.submit(task_body(data_source={"provider": "aws", "region": "mars-1"}))
    assert "us-east-1" in unknown.text  # says which regions are known
    after = (await engine.http.get("/v1/tasks", params={"limit": 500})).json()["items"]
    assert len(after) == len(before)


async def test_unknown_task_is_404(engine: Engine) -> None:
    assert (await engine.http.get("/v1/tasks/nope-123")).status_code == 404
    assert (await engine.http.post("/v1/tasks/nope-123/stop")).status_code == 404
    assert (await engine.http.patch("/v1/tasks/nope-123", json={"name": "x"})).status_code == 404


async def test_list_filters_and_cursor(engine: Engine) -> None:
    bu = uid("bu")
    ids = {uid() for _ in range(5)}
    for task_id in ids:
        await engine.submit(task_body(id=task_id, business_unit=bu, start=False))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"business_unit": bu, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await engine.http.get("/v1/tasks", params=params)).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    pending = (
        await engine.http.get("/v1/tasks", params={"business_unit": bu, "status": "PENDING"})
    ).json()
    assert len(pending["items"]) == 5
    bad = await engine.http.get("/v1/tasks", params={"cursor": "garbage"})
    assert bad.status_code == 422


async def test_regions_report_health_and_load(engine: Engine) -> None:
    regions = (await engine.http.get("/v1/regions")).json()["items"]
    names = {r["name"] for r in regions}
    assert names == set(engine.regions.names)
    for region in regions:
        assert region["state"] == "up"
        assert region["nodes_ready"] == 3
        assert 0.0 <= region["water_level"] <= 1.0
        assert region["pollers"] >= 1


async def test_data_in_azure_lands_in_azure(engine: Engine) -> None:
    task_id = uid()
    await engine.submit(
        task_body(id=task_id, data_source={"provider": "azure", "region": "eastus"})
    )
    task = await engine.wait_status(task_id, "RUNNING", "SUCCEEDED")
    assert task["region"] == "azure-eastus"
    table = (await engine.http.get(f"/v1/tasks/{task_id}/placement")).json()
    assert table["chosen"] == "azure-eastus"
    assert len(table["candidates"]) + len(table["filtered"]) == len(engine.regions.names)


async def test_unit_worker_restart_loses_nothing(engine: Engine) -> None:
    task_ids = [uid() for _ in range(4)]
    for task_id in task_ids:
        body = task_body(id=task_id)
        body["job"]["annotations"] = {"kubesim.io/duration": "3s"}
        await engine.submit(body)
    for task_id in task_ids:
        await engine.wait_status(task_id, "RUNNING", "SUCCEEDED")
    await engine.stop_units()
    await asyncio.sleep(4)  # the Jobs complete while nobody watches
    await engine.start_units()
    for task_id in task_ids:
        done = await engine.wait_status(task_id, "SUCCEEDED", timeout=60)
        assert done["attempt"] == 1  # no duplicate attempt, no second Job
    await engine.wait_regions_up()


async def test_task_row_without_workflow_is_started_by_the_sweep(engine: Engine) -> None:
    """The API died between writing the task and starting its workflow: not lost."""
    from meridian.tasks.spec import TaskSpec, TaskStatus

    task_id = uid()
    body = task_body()
    spec = TaskSpec.model_validate(body)
    engine.store.create_task(key_of(task_id), spec, status=TaskStatus.SCHEDULING, public_id=task_id)
    done = await engine.wait_status(task_id, "SUCCEEDED", timeout=60)
    assert done["attempt"] == 1
    runs = (await engine.http.get("/v1/sweeps", params={"kind": "running-tasks"})).json()
    assert any(r["fixed"].get("workflows_started") for r in runs["items"])
