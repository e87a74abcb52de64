"""A burst end to end: the engine places a task on a region's serverless capacity, the Job
lands on kubesim's virtual node with its billed size, and the placement says so."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.integration.harness import Engine, task_body

REGION = "alibaba-cn-hangzhou"  # ECI, cold start 3 s (infra/regions/dev.yaml)


def pod_of(engine: Engine, job_name: str) -> Any:
    api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=engine.settings.kubeconfig, context=REGION
    )
    try:
        pods: Any = k8s.CoreV1Api(api).list_pod_for_all_namespaces(
            label_selector=f"job-name={job_name}"
        )
        return pods.items[0]
    finally:
        api.close()


async def test_a_serverless_task_runs_on_the_virtual_node_billed_and_explained(
    engine: Engine,
) -> None:
    task_id = f"burst-{uuid.uuid4().hex[:10]}"
    body = task_body(
        id=task_id,
        data_source={"provider": "alibaba", "region": "cn-hangzhou"},
        placement={"region": REGION, "capacity": "serverless"},
        job={
            "image": "busybox",
            "resources": {"cpu": "700m", "memory": "1500Mi"},
            "annotations": {"kubesim.io/duration": "60s"},
        },
    )
    assert (await engine.submit(body)).status_code == 201
    try:
        task = await engine.wait_status(task_id, "RUNNING")
        assert task["region"] == REGION
        pod = pod_of(engine, task["job_name"])
        assert pod.spec.node_name == f"virtual-kubelet-{REGION.removeprefix('alibaba-')}"
        annotations = pod.metadata.annotations
        # ECI rounds 0.7 CPU / 1.5 GiB up to its 1 CPU / 2 GiB size.
        assert annotations["meridian.io/billed-cpu"] == "1"
        assert annotations["meridian.io/billed-memory"] == "2Gi"
        assert annotations["meridian.io/serverless-kind"] == "eci"
        table = (await engine.http.get(f"/v1/tasks/{task_id}/placement")).json()
        assert table["chosen"] == REGION
        assert "would burst to serverless (eci), est. ¥0.2290/h" in table["reason"]
        assert table["candidates"][0]["burst"]["billed"] == {
            "cpu_millis": 1000,
            "memory_bytes": 2 * 1024**3,
        }
    finally:
        await engine.http.post(f"/v1/tasks/{task_id}/stop")


async def test_an_auto_task_bursts_when_the_pools_are_full_at_their_ceiling(
    engine: Engine,
) -> None:
    # aws-us-east-1: a pool of 8-CPU nodes, at most 8. Fill all eight (the scaling loop
    # grows the pool to its ceiling for them), then ask for 2 CPU there.
    region = "aws-us-east-1"
    fillers = [f"fill-{uuid.uuid4().hex[:10]}" for _ in range(8)]
    job = {"image": "busybox", "annotations": {"kubesim.io/duration": "120s"}}
    for filler in fillers:
        body = task_body(
            id=filler,
            placement={"region": region, "capacity": "nodes"},
            job={**job, "resources": {"cpu": "7500m", "memory": "1Gi"}},
        )
        assert (await engine.submit(body)).status_code == 201
    task_id = f"auto-{uuid.uuid4().hex[:10]}"
    try:
        for filler in fillers:
            await engine.wait_status(filler, "RUNNING", timeout=120)
        # The probe must have seen the full nodes before the task is placed.
        await _until_full(engine, region)
        body = task_body(
            id=task_id,
            placement={"region": region},
            job={**job, "resources": {"cpu": "2", "memory": "1Gi"}},
        )
        assert (await engine.submit(body)).status_code == 201
        task = await engine.wait_status(task_id, "RUNNING")
        table = (await engine.http.get(f"/v1/tasks/{task_id}/placement")).json()
        assert "would burst to serverless (fargate), est. $" in table["reason"]
        assert "the pools are at their ceiling" in table["reason"]
        api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=engine.settings.kubeconfig, context=region
        )
        try:
            pods: Any = k8s.CoreV1Api(api).list_pod_for_all_namespaces(
                label_selector=f"job-name={task['job_name']}"
            )
        finally:
            api.close()
        pod = pods.items[0]
        assert pod.spec.node_name == "fargate-us-east-1"
        # Fargate adds 256 MiB, then rounds 2 vCPU / 1.25 GiB up to 2 vCPU / 4 GiB.
        assert pod.metadata.annotations["meridian.io/billed-memory"] == "4Gi"
    finally:
        for stop in [task_id, *fillers]:
            await engine.http.post(f"/v1/tasks/{stop}/stop")


async def _until_full(engine: Engine, region: str) -> None:
    body = task_body(
        placement={"region": region, "capacity": "nodes"},
        job={"image": "busybox", "resources": {"cpu": "2", "memory": "1Gi"}},
    )
    for _ in range(100):
        result = (await engine.http.post("/v1/placement:dry-run", json=body)).json()
        if result["chosen"] is None:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{region} never seen full: {result}")
