"""Placement on kubesim with the real engine: load, network, worker health, explanations."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.integration.harness import Engine, task_body


def uid() -> str:
    return f"pl-{uuid.uuid4().hex[:10]}"


async def dry_run(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    response = await engine.http.post("/v1/placement:dry-run", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def until(predicate: Any, timeout: float = 30.0, every: float = 0.3) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(every)


async def settle(engine: Engine) -> None:
    """Leave the fleet as found: aws data placed in aws again (load drained, EWMA back)."""
    body = task_body(data_source={"provider": "aws", "region": "us-east-1"})

    async def at_home() -> bool:
        return (await dry_run(engine, body))["chosen"] == "aws-us-east-1"

    await until(at_home, timeout=60)


async def test_dry_run_explains_and_creates_nothing(engine: Engine) -> None:
    before = len((await engine.http.get("/v1/tasks", params={"limit": 500})).json()["items"])
    result = await dry_run(
        engine, task_body(data_source={"provider": "gcp", "region": "europe-west1"})
    )
    assert result["chosen"] == "gcp-europe-west1"
    assert "gcp-europe-west1" in result["reason"]
    ranked = [c["region"] for c in result["candidates"]]
    assert ranked[0] == "gcp-europe-west1"
    for candidate in result["candidates"]:
        assert {"locality", "network", "load"} <= set(candidate["details"])
    after = len((await engine.http.get("/v1/tasks", params={"limit": 500})).json()["items"])
    assert after == before


async def fill_until_filtered(
    engine: Engine, probe: dict[str, Any], filler_job: dict[str, Any], regions: list[str]
) -> list[str]:
    """Pin long fillers to each region until the probe's dry run filters it.

    How many it takes is measured, not assumed: earlier tests may have grown a pool or
    left a pod running. Fillers stay on nodes (under `auto`, aws and alibaba would burst
    a filler that finds the nodes busy to their serverless pods)."""
    fillers: list[str] = []
    for _ in range(12):  # a pool's ceiling is 8 nodes
        result = await dry_run(engine, probe)
        open_regions = [c["region"] for c in result["candidates"] if c["region"] in regions]
        if not open_regions:
            return fillers
        batch = []
        for region in open_regions:
            filler = uid()
            body = task_body(id=filler, job=filler_job)
            body["placement"] = {"region": region, "capacity": "nodes"}
            assert (await engine.submit(body)).status_code == 201
            batch.append(filler)
        fillers += batch

        async def settled(batch: list[str] = batch) -> bool:
            # Each filler runs, or waits unplaced for room: either way its region is as
            # full as it gets.
            for filler in batch:
                task = await engine.task(filler)
                placement = task.get("placement") or {}
                waiting = (
                    task["status"] == "SCHEDULING"
                    and placement.get("reason")
                    and (placement.get("region") is None)
                )
                if task["status"] != "RUNNING" and not waiting:
                    return False
            return True

        await until(settled, timeout=90)
        # The fillers' pods are in the load once a probe after them has answered.
        await asyncio.sleep(3 * engine.settings.failover.health_interval_seconds)
    raise AssertionError(f"regions {regions} never filled: {await dry_run(engine, probe)}")


async def stop_all(engine: Engine, task_ids: list[str]) -> None:
    for task_id in task_ids:
        stopped = await engine.http.post(f"/v1/tasks/{task_id}/stop")
        assert stopped.status_code == 200, stopped.text


async def test_unplaceable_task_waits_with_a_reason(engine: Engine) -> None:
    # Fits a node, but every region's nodes are too busy: 30 of 32 GiB on one task.
    task_id = uid()
    hog = {"image": "busybox", "resources": {"cpu": "1", "memory": "30Gi"}}
    # On nodes only: aws and alibaba would burst an `auto` task to their serverless pods.
    body = task_body(id=task_id, job=hog, placement={"capacity": "nodes"})
    filler_job = {**hog, "annotations": {"kubesim.io/duration": "600s"}}
    blockers: list[str] = []
    try:
        blockers = await fill_until_filtered(engine, body, filler_job, engine.regions.names)
        assert (await engine.submit(body)).status_code == 201

        async def explained() -> dict[str, Any] | None:
            task = await engine.task(task_id)
            reason = (task.get("placement") or {}).get("reason") or ""
            return task if "largest free" in reason else None

        task = await until(explained)
        assert task["status"] == "SCHEDULING"
        table = (await engine.http.get(f"/v1/tasks/{task_id}/placement")).json()
        assert table["chosen"] is None
        assert {f["region"] for f in table["filtered"]} == set(engine.regions.names)
    finally:
        # Ten-minute blockers left running would fill the fleet for every later test.
        await stop_all(engine, [task_id, *blockers])


async def test_a_task_larger_than_any_node_is_refused_at_submit(engine: Engine) -> None:
    # It would wait for ever: no node in the fleet can hold 64 CPU.
    body = task_body(id=uid(), job={"image": "busybox", "resources": {"cpu": "64"}})
    response = await engine.submit(body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:3] == ["body", "job", "resources"]


async def test_pinned_region_is_honoured(engine: Engine) -> None:
    task_id = uid()
    body = task_body(id=task_id, placement={"region": "alibaba-cn-hangzhou"})
    await engine.submit(body)
    task = await engine.wait_status(task_id, "RUNNING", "SUCCEEDED")
    assert task["region"] == "alibaba-cn-hangzhou"


async def test_saturated_region_loses_to_a_free_one(engine: Engine) -> None:
    # On nodes only: under `auto`, aws would burst the probe to its Fargate capacity.
    probe = task_body(
        job={"image": "busybox", "resources": {"cpu": "2", "memory": "1Gi"}},
        placement={"capacity": "nodes"},
    )
    filler_job = {
        "image": "busybox",
        "resources": {"cpu": "7500m", "memory": "1Gi"},
        "annotations": {"kubesim.io/duration": "120s"},
    }
    fillers: list[str] = []
    try:
        fillers = await fill_until_filtered(engine, probe, filler_job, ["aws-us-east-1"])
        result = await dry_run(engine, probe)
        assert result["chosen"] not in (None, "aws-us-east-1"), result
        aws = next(f for f in result["filtered"] if f["region"] == "aws-us-east-1")
        assert "CPU" in aws["reason"]
    finally:
        await stop_all(engine, fillers)
        await settle(engine)


async def test_degraded_network_path_loses(engine: Engine) -> None:
    control = httpx.AsyncClient(base_url=engine.settings.kubesim_control_url, timeout=10)
    body = task_body(data_source={"provider": "aws", "region": "us-east-1"})

    async def at_home() -> bool:
        return (await dry_run(engine, body))["chosen"] == "aws-us-east-1"

    await until(at_home)  # earlier tests' load has drained from the snapshot
    degrade = {"target": "aws:us-east-1", "rtt_ms": 900.0, "loss": 0.3}
    response = await control.post("/sim/regions/aws-us-east-1/network", json=degrade)
    assert response.status_code == 200, response.text
    try:

        async def rerouted() -> dict[str, Any] | None:
            result = await dry_run(engine, body)
            return result if result["chosen"] == "azure-eastus" else None

        result = await until(rerouted, timeout=30)
        aws = next(c for c in result["candidates"] if c["region"] == "aws-us-east-1")
        assert "RTT" in aws["details"]["network"]
    finally:
        await control.post(
            "/sim/regions/aws-us-east-1/network",
            json={"target": "aws:us-east-1", "rtt_ms": 1.0, "loss": 0.0},
        )
        await control.aclose()
        await settle(engine)


async def test_region_without_polling_worker_is_filtered(engine: Engine) -> None:
    others = [n for n in engine.regions.names if n != "gcp-europe-west1"]
    await engine.stop_units()
    await engine.start_units(others)
    body = task_body(data_source={"provider": "gcp", "region": "europe-west1"})
    try:

        async def filtered() -> dict[str, Any] | None:
            result = await dry_run(engine, body)
            gcp = [f for f in result["filtered"] if f["region"] == "gcp-europe-west1"]
            return result if gcp else None

        result = await until(filtered, timeout=30)
        gcp = next(f for f in result["filtered"] if f["region"] == "gcp-europe-west1")
        assert "worker" in gcp["reason"] or "polling" in gcp["reason"]
        assert result["chosen"] != "gcp-europe-west1"
        regions = (await engine.http.get("/v1/regions")).json()["items"]
        gcp_state = next(r for r in regions if r["name"] == "gcp-europe-west1")
        assert gcp_state["worker_polling"] is False
    finally:
        await engine.stop_units()
        await engine.start_units()
        await engine.wait_regions_up()
