"""Serverless capacity breaks: its virtual node goes NotReady, or the cloud's quota runs out.

A burst task must survive both as a task on nodes survives a lost node or a full
region: the NotReady node's tasks fail over (NodeLost, a move, not a failure), tasks
refused by an exhausted quota wait or go elsewhere (Unschedulable, moved after the
deadline, by the rule for full nodes). Nothing is lost and no Job runs twice.

Both regions with serverless capacity in the chaos world (aws Fargate, alibaba ECI) have
pools that cannot grow (`chaos_regions_file`), so `serverless` tasks are used: they go to
serverless room only, which keeps every move on serverless capacity and the scenario
small (no pools to fill first).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, orphans_of
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import PRIMARY, batch, events, wait_until
from tests.integration.harness import Engine

FARGATE_NODE = "fargate-us-east-1"  # aws-us-east-1's virtual node (infra/regions/dev.yaml)
OTHER = "alibaba-cn-hangzhou"  # the other region with serverless capacity (ECI)


def burst(task_id: str, duration: str, **placement: Any) -> dict[str, Any]:
    """A `serverless` task preferring PRIMARY; one attempt, so a move counted as the
    task's own failure would end it FAILED."""
    return batch(
        task_id,
        duration,
        placement={"preferences": [[PRIMARY]], "capacity": "serverless", **placement},
        retry={"max_attempts": 1},
    )


async def dry_run(engine: Engine, **placement: Any) -> dict[str, Any]:
    body = batch("dry-run", "1s", placement={"capacity": "serverless", **placement})
    response = await engine.http.post("/v1/placement:dry-run", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def why_not(table: dict[str, Any], region: str) -> str:
    """Why `region` was filtered out ("" while it is a candidate)."""
    return next((f["reason"] for f in table["filtered"] if f["region"] == region), "")


async def until_dry_run(
    engine: Engine, check: Any, *, timeout: float, what: str, **placement: Any
) -> dict[str, Any]:
    """The placement table once `check(table)` holds (the probe sees faults a tick late)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        table = await dry_run(engine, **placement)
        if check(table):
            return table
        assert asyncio.get_running_loop().time() < deadline, f"{what}: {table}"
        await asyncio.sleep(0.3)


async def node_of(clusters: Clusters, region: str, job_name: str) -> str:
    pods = await asyncio.to_thread(clusters.pods_of, region, job_name)
    return str(pods[0].spec.node_name)


async def test_virtual_node_not_ready_fails_its_tasks_over_like_a_lost_node(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    tasks = [uid("vnode") for _ in range(6)]
    await submit_all(engine, [burst(t, "20s") for t in tasks])
    # Fargate's simulated cold start is 8 s.
    await wait_until(
        http,
        tasks,
        lambda t: t["status"] == "RUNNING" and t["region"] == PRIMARY,
        timeout=45,
        what=f"RUNNING on {PRIMARY}'s serverless capacity",
    )
    for task_id in tasks:
        job_name = (await engine.task(task_id))["job_name"]
        assert await node_of(clusters, PRIMARY, job_name) == FARGATE_NODE

    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
        await control.set_serverless_ready(PRIMARY, False)
        try:
            await wait_until(
                http,
                tasks,
                lambda t: t["status"] == "RUNNING" and t["attempt"] == 2,
                timeout=45,
                what="RUNNING again on a new attempt",
            )
            # While NotReady the region's serverless room is no candidate, and says why.
            table = await until_dry_run(
                engine,
                lambda t: "virtual node NotReady" in why_not(t, PRIMARY),
                timeout=10,
                what="a NotReady virtual node must not take serverless tasks",
                region=PRIMARY,
            )
            assert table["chosen"] is None, table
        finally:
            await control.set_serverless_ready(PRIMARY, True)
        report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=60)
    assert dupes.seen == {}, dupes.seen
    for task_id in tasks:
        task = report.tasks[task_id]
        # A move, not a failure (max_attempts 1), and to the other serverless region:
        # the lost one is excluded for the task.
        assert task["attempt"] == 2 and task["error"] is None, task
        assert task["region"] == OTHER, task
        reasons = [e["reason"] for e in await events(http, task_id)]
        assert any("NodeLost" in r and FARGATE_NODE in r for r in reasons), reasons
        assert any(r.startswith("moving: ") for r in reasons), reasons


async def test_exhausted_quota_tasks_wait_or_go_elsewhere(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    deadline = engine.settings.failover.unschedulable_seconds
    await until_dry_run(
        engine,
        lambda t: t["chosen"] == PRIMARY,
        timeout=20,
        what=f"{PRIMARY}'s serverless capacity back after the last scenario",
        region=PRIMARY,
    )
    movers = [uid("quota") for _ in range(5)]
    pinned = uid("quota-pin")
    everyone = [*movers, pinned]
    async with DuplicateWatch(clusters, everyone, orphans=orphans_of(engine.store)) as dupes:
        await control.exhaust_serverless(PRIMARY)
        # The probe saw a Ready virtual node with room: these are placed there, and the
        # cloud refuses their pods (Unschedulable), as a full region's scheduler would.
        await submit_all(engine, [burst(t, "6s") for t in movers])
        await wait_until(
            http,
            movers,
            lambda t: t["attempt"] == 1 and t["region"] == PRIMARY,
            timeout=20,
            what=f"placed on {PRIMARY}",
        )
        # Refused pods are how an exhausted quota shows: the region's serverless room is
        # no candidate while they wait, so a task pinned there waits and creates nothing.
        table = await until_dry_run(
            engine,
            lambda t: "quota exhausted" in why_not(t, PRIMARY),
            timeout=20,
            what="refused burst pods must close the region's serverless room",
            region=PRIMARY,
        )
        assert table["chosen"] is None, table
        await submit_all(engine, [burst(pinned, "6s", region=PRIMARY)])
        waiting = await engine.wait_status(pinned, "SCHEDULING", timeout=20)
        assert waiting["attempt"] == 0, waiting
        # The refused tasks go elsewhere after the unschedulable deadline, like tasks a
        # full region cannot schedule.
        await wait_until(
            http,
            movers,
            lambda t: t["status"] in ("RUNNING", "SUCCEEDED") and t["region"] == OTHER,
            timeout=deadline + 30,
            what=f"moved to {OTHER}",
        )
        # Quota back: the waiting task runs where it is pinned.
        await control.exhaust_serverless(PRIMARY, False)
        report = await auditor.audit(
            expect(movers, "SUCCEEDED") | expect([pinned], "SUCCEEDED"), timeout=60
        )
    assert dupes.seen == {}, dupes.seen
    for task_id in movers:
        task = report.tasks[task_id]
        assert task["attempt"] == 2 and task["error"] is None, task
        reasons = [e["reason"] for e in await events(http, task_id)]
        assert any(r.startswith(f"moving: Job unschedulable in {PRIMARY}") for r in reasons), (
            reasons
        )
    task = report.tasks[pinned]
    assert task["region"] == PRIMARY and task["error"] is None, task
    reasons = [e["reason"] for e in await events(http, pinned)]
    assert any("quota exhausted" in r for r in reasons), reasons
