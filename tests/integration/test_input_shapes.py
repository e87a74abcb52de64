"""Input shapes over HTTP against the real engine: numeric quantities, the Kubernetes env
list, `backoff`, PATCH as a JSON merge patch, and events carrying both `time` and `at`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.integration.harness import Engine, task_body

REGION = "aws-us-east-1"  # where aws us-east-1 data runs


def uid(prefix: str = "shape") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def container_of(engine: Engine, job_name: str) -> Any:
    """The container of a Job as Kubernetes (kubesim) holds it, read with the official client."""
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=engine.settings.kubeconfig, context=REGION
    )
    try:
        job: Any = k8s.BatchV1Api(api).read_namespaced_job(job_name, "meridian-ads")
        return job.spec.template.spec.containers[0]
    finally:
        api.close()


async def wait_attempt(engine: Engine, task_id: str, attempt: int) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    task: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        task = await engine.task(task_id)
        if task["attempt"] == attempt and task["status"] == "RUNNING" and task["job_name"]:
            return task
        await asyncio.sleep(0.2)
    raise AssertionError(f"{task_id} not RUNNING attempt {attempt}: {task}")


def shaped_body(task_id: str, *, numeric: bool) -> dict[str, Any]:
    body = task_body(id=task_id)
    body["job"]["annotations"] = {"kubesim.io/duration": "120s"}
    if numeric:
        body["job"]["resources"] = {"cpu": 1, "memory": 268435456}
        body["job"]["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
        body["retry"] = {"max_attempts": 5, "backoff": 3}
    else:
        body["job"]["resources"] = {"cpu": "1", "memory": "268435456"}
        body["job"]["env"] = {"A": "1", "B": "2"}
        body["retry"] = {"max_attempts": 5, "backoff_seconds": 3}
    return body


async def test_numbers_env_list_and_merge_patch(engine: Engine) -> None:
    task_id = uid()
    response = await engine.submit(shaped_body(task_id, numeric=True))
    assert response.status_code == 201, response.text
    spec = response.json()["spec"]
    assert spec["job"]["resources"] == {"cpu": "1", "memory": "268435456"}
    assert spec["job"]["env"] == {"A": "1", "B": "2"}
    assert spec["retry"]["backoff_seconds"] == 3
    # The same task written with strings and the env map is the same body: idempotent.
    again = await engine.submit(shaped_body(task_id, numeric=False))
    assert again.status_code == 200, again.text

    running = await wait_attempt(engine, task_id, 1)
    first = container_of(engine, running["job_name"])
    assert first.resources.requests == {"cpu": "1", "memory": "268435456"}
    assert {e.name: e.value for e in first.env}.items() >= {"A": "1", "B": "2"}.items()

    # Only job.resources.cpu: memory, env, command and retry survive the merge.
    patched = await engine.http.patch(
        f"/v1/tasks/{task_id}", json={"job": {"resources": {"cpu": 0.25}}}
    )
    assert patched.status_code == 200, patched.text
    for current in (patched.json()["spec"], (await engine.task(task_id))["spec"]):
        assert current["job"]["resources"] == {"cpu": "0.25", "memory": "268435456"}
        assert current["job"]["env"] == {"A": "1", "B": "2"}
        assert current["job"]["command"] == ["sh", "-c", "echo hi"]
        assert current["retry"]["max_attempts"] == 5 and current["retry"]["backoff_seconds"] == 3
    # The cpu changed, so the Job was replaced, built from the merged spec.
    replaced = await wait_attempt(engine, task_id, 2)
    second = container_of(engine, replaced["job_name"])
    assert second.resources.requests == {"cpu": "0.25", "memory": "268435456"}
    assert {e.name: e.value for e in second.env}.items() >= {"A": "1", "B": "2"}.items()

    # Retry fields merge too, and a null map value removes just that key.
    patched = await engine.http.patch(
        f"/v1/tasks/{task_id}",
        json={"retry": {"max_attempts": 2}, "labels": {"team": "x"}, "job": {"env": {"B": None}}},
    )
    assert patched.status_code == 200, patched.text
    current = patched.json()["spec"]
    assert current["retry"]["max_attempts"] == 2 and current["retry"]["backoff_seconds"] == 3
    assert current["job"]["env"] == {"A": "1"}
    assert current["job"]["resources"] == {"cpu": "0.25", "memory": "268435456"}
    assert current["labels"] == {"team": "x"}

    # A merged value that is bad is a 422 naming the field; a null field is refused.
    bad = await engine.http.patch(
        f"/v1/tasks/{task_id}", json={"job": {"resources": {"memory": "-1Gi"}}}
    )
    assert bad.status_code == 422, bad.text
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "job", "resources", "memory"]]
    null = await engine.http.patch(f"/v1/tasks/{task_id}", json={"retry": None})
    assert null.status_code == 422, null.text
    assert [e["loc"] for e in null.json()["detail"]] == [["body", "retry"]]

    stopped = await engine.http.post(f"/v1/tasks/{task_id}/stop")
    assert stopped.status_code == 200, stopped.text
    events = (await engine.http.get(f"/v1/tasks/{task_id}/events")).json()["items"]
    assert events
    for event in events:
        assert event["time"] == event["at"]
        assert {"attempt", "region", "reason", "status"} <= event.keys()


async def test_status_port_on_batch_names_the_field(engine: Engine) -> None:
    body = task_body(id=uid())
    body["job"]["status_port"] = 8080
    response = await engine.submit(body)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "job", "status_port"]]


async def test_env_value_from_is_refused(engine: Engine) -> None:
    body = task_body(id=uid())
    body["job"]["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]
    response = await engine.submit(body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "job", "env"]
    assert "valueFrom supports only secretKeyRef" in detail[0]["msg"]


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_body_over_the_limit_is_413_and_stores_nothing(engine: Engine) -> None:
    limit = engine.settings.api_max_body_bytes
    assert limit == 1 << 20  # the default, 1 MiB
    for chunked in (False, True):
        task_id = uid("big")
        body = task_body(id=task_id, start=False)
        body["job"]["env"] = {"PAYLOAD": "x" * (limit + 1024)}
        data = json.dumps(body).encode()
        # Chunked: no Content-Length, so the API must count what arrives.
        content = pieces(data, 64 * 1024) if chunked else data
        response = await engine.http.post(
            "/v1/tasks", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text[:300]
        assert f"{limit} bytes" in response.json()["detail"]
        assert (await engine.http.get(f"/v1/tasks/{task_id}")).status_code == 404


async def test_a_list_past_its_bound_is_a_422_naming_it_everywhere(engine: Engine) -> None:
    task_id = uid("many")
    body = task_body(id=task_id, start=False)
    body["job"]["env"] = {f"E{i}": "1" for i in range(5000)}  # far past any sane bound
    for path in ("/v1/tasks", "/v1/placement:dry-run"):
        response = await engine.http.post(path, json=body)
        assert response.status_code == 422, response.text[:300]
        assert [e["loc"] for e in response.json()["detail"]] == [["body", "job", "env"]]
    assert (await engine.http.get(f"/v1/tasks/{task_id}")).status_code == 404
