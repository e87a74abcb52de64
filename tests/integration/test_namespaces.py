"""Tasks run in their business unit's namespace, which Pod Security `restricted` guards:
the whole engine (API, workflows, unit workers, watch) against kubesim."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.integration.harness import Engine, task_body

REGION = "aws-us-east-1"  # where the task's data is


@pytest.fixture
def api(engine: Engine) -> Iterator[k8s.ApiClient]:
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=engine.settings.kubeconfig, context=REGION
    )
    yield api
    api.close()


def jobs_in(api: k8s.ApiClient, namespace: str, task_key: str) -> list[Any]:
    """A task's Jobs in `namespace`, by its key (the workflow id: the label's value)."""
    return list(
        k8s.BatchV1Api(api)
        .list_namespaced_job(namespace, label_selector=f"meridian.io/task-id={task_key}")
        .items
    )


async def test_a_task_of_ads_runs_in_meridian_ads_under_restricted(
    engine: Engine, api: k8s.ApiClient
) -> None:
    task_id = f"ns-{uuid.uuid4().hex[:10]}"
    # Long enough to find the Job before the job sweep may clean it up.
    body = task_body(id=task_id, job={"annotations": {"kubesim.io/duration": "4s"}})
    response = await engine.submit(body)
    assert response.status_code == 201, response.text
    running = await engine.wait_status(task_id, "RUNNING")
    assert running["region"] == REGION

    labels = k8s.CoreV1Api(api).read_namespace("meridian-ads").metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["meridian.io/business-unit"] == "ads"
    key = running["workflow_id"]
    assert key == f"ads.{task_id}"
    [job] = jobs_in(api, "meridian-ads", key)
    assert job.metadata.name == running["job_name"]
    # The services' namespace holds no task pods any more.
    assert jobs_in(api, engine.settings.kubernetes_namespace, key) == []
    policies = k8s.NetworkingV1Api(api).list_namespaced_network_policy("meridian-ads").items
    assert {p.metadata.name for p in policies} == {
        "meridian-deny-ingress",
        "meridian-allow-status-port",
    }

    # Admitted by `restricted` (a refusal would have failed the task) and ran to the end.
    done = await engine.wait_status(task_id, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done


async def test_two_units_tasks_land_in_two_namespaces_and_both_are_followed(
    engine: Engine, api: k8s.ApiClient
) -> None:
    tasks = {f"ns-{unit}-{uuid.uuid4().hex[:8]}": unit for unit in ("ads", "search-bu")}
    for task_id, unit in tasks.items():
        body = task_body(
            id=task_id, business_unit=unit, job={"annotations": {"kubesim.io/duration": "4s"}}
        )
        response = await engine.submit(body)
        assert response.status_code == 201, response.text
    for task_id, unit in tasks.items():
        running = await engine.wait_status(task_id, "RUNNING")
        found = jobs_in(api, f"meridian-{unit}", running["workflow_id"])
        assert [j.metadata.name for j in found] == [running["job_name"]]
    for task_id in tasks:
        done = await engine.wait_status(task_id, "SUCCEEDED", "FAILED")
        assert done["status"] == "SUCCEEDED", done
        events = (await engine.http.get(f"/v1/tasks/{task_id}/events")).json()["items"]
        assert [e["status"] for e in events].count("RUNNING") == 1


async def test_a_namespace_deleted_under_a_running_task_is_set_up_again(
    engine: Engine, api: k8s.ApiClient
) -> None:
    # Its own unit, so that no other test's task lives in the namespace deleted here.
    unit = f"nsgone-{uuid.uuid4().hex[:6]}"
    namespace = f"meridian-{unit}"
    task_id = f"ns-{uuid.uuid4().hex[:10]}"
    # Pinned: its next attempt comes back to the region whose namespace is gone.
    body = task_body(
        id=task_id,
        business_unit=unit,
        placement={"region": REGION},
        job={"annotations": {"kubesim.io/duration": "20s"}},
    )
    response = await engine.submit(body)
    assert response.status_code == 201, response.text
    running = await engine.wait_status(task_id, "RUNNING")
    key = running["workflow_id"]
    first_job = running["job_name"]
    assert [j.metadata.name for j in jobs_in(api, namespace, key)] == [first_job]

    # Someone deletes the unit's namespace, and with it the running Job. The worker's
    # "namespace is ready" note is now stale: the next create must set it up again.
    k8s.CoreV1Api(api).delete_namespace(namespace)

    done = await engine.wait_status(task_id, "SUCCEEDED", "FAILED", timeout=120.0)
    assert done["status"] == "SUCCEEDED", done
    assert done["attempt"] >= 2 and done["job_name"] != first_job, done
    assert done["region"] == REGION, done
    labels = k8s.CoreV1Api(api).read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # The lost attempt's Job is gone with its namespace; only the new one was made there.
    assert [j.metadata.name for j in jobs_in(api, namespace, key)] in ([], [done["job_name"]])
