"""A node dies under running tasks; Jobs the scheduler cannot place are moved."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from kubesim.control import AsyncKubesimControl
from meridian.tasks.spec import job_name_for
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, key_of, orphans_of
from tests.chaos.conftest import CHAOS_EVICTION_DELAY, submit_all, uid
from tests.chaos.helpers import PRIMARY, batch, events, preferring, wait_until
from tests.integration.harness import Engine


async def test_node_not_ready_moves_tasks_without_counting_a_failure(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    # max_attempts 1: were a lost node counted as the task's own failure, it would FAIL.
    tasks = [uid("node") for _ in range(15)]
    await submit_all(
        engine,
        [batch(t, "12s", placement=preferring(PRIMARY), retry={"max_attempts": 1}) for t in tasks],
    )
    await wait_until(http, tasks, lambda t: t["status"] == "RUNNING", timeout=45, what="RUNNING")
    node_of: dict[str, str] = {}
    for task_id in tasks:
        pods = await asyncio.to_thread(clusters.pods_of, PRIMARY, job_name_for(key_of(task_id), 1))
        node_of[task_id] = pods[0].spec.node_name
    victim, _ = Counter(node_of.values()).most_common(1)[0]
    on_victim = [t for t, n in node_of.items() if n == victim]
    elsewhere = [t for t in tasks if t not in on_victim]
    assert on_victim, node_of

    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
        await control.set_node_ready(PRIMARY, victim, False)
        try:
            moved = await wait_until(
                http,
                on_victim,
                lambda t: t["status"] == "RUNNING" and t["attempt"] == 2,
                timeout=40,
                what="RUNNING again on a new attempt",
            )
            # Eviction (NodeLost) comes after the simulated eviction delay, not before.
            assert min(moved.values()) >= float(CHAOS_EVICTION_DELAY.rstrip("s")) - 0.5
        finally:
            await control.set_node_ready(PRIMARY, victim, True)
        report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=60)
    assert dupes.seen == {}, dupes.seen
    for task_id in on_victim:
        task = report.tasks[task_id]
        assert task["attempt"] == 2 and task["error"] is None, task
        reasons = [e["reason"] for e in await events(http, task_id)]
        # Two engine paths may win the race, both infrastructure, neither a failure: the
        # pod's eviction (NodeLost: the region is excluded and the task moves) or the
        # resource loop draining the NotReady node first (node-unhealthy: a new attempt
        # on a healthy node of the same region).
        assert any(
            ("NodeLost" in r and victim in r) or r.startswith("retrying: node-unhealthy")
            for r in reasons
        ), reasons
    for task_id in elsewhere:
        assert report.tasks[task_id]["attempt"] == 1, report.tasks[task_id]


async def test_unschedulable_job_moves_after_the_deadline(
    chaos_engine: Engine, clusters: Clusters, auditor: Auditor
) -> None:
    """Placements decided on the same load snapshot overfill a region (each fits alone).

    Three 8-CPU nodes take three 5-CPU Jobs; the rest stay Pending (Unschedulable)
    until the deadline, then move. Placement's reservations count what it placed since
    the last probe against the region's total free CPU, not node by node, so a fourth
    task still looks as if it fits (3 nodes x 3 CPU left); a fifth may go elsewhere.
    """
    engine, http = chaos_engine, chaos_engine.http
    region = "gcp-europe-west1"
    deadline = engine.settings.failover.unschedulable_seconds
    tasks = [uid("big") for _ in range(5)]
    bodies = [batch(t, "120s", placement=preferring(region)) for t in tasks]
    for body in bodies:
        body["job"]["resources"] = {"cpu": "5", "memory": "1Gi"}
    submitted_at = time.monotonic()
    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
        await submit_all(engine, bodies)
        await wait_until(http, tasks, lambda t: t["attempt"] >= 1, timeout=20, what="placed")
        first = {t: await engine.task(t) for t in tasks}
        stuck = [t for t, task in first.items() if task["region"] == region]
        assert len(stuck) > 3, f"expected more placed in {region} than fit: {first}"
        waits_from = time.monotonic()
        moved = await wait_until(
            http,
            tasks,
            lambda t: t["status"] == "RUNNING",
            timeout=deadline + 30,
            what="RUNNING",
        )
        now = {t: await engine.task(t) for t in tasks}
        movers = [t for t in tasks if now[t]["attempt"] > 1]
        assert set(movers) <= set(stuck) and len(movers) == len(stuck) - 3, {
            t: (task["status"], task["region"], task["attempt"]) for t, task in now.items()
        }
        for task_id in movers:
            assert waits_from + moved[task_id] - submitted_at >= deadline - 0.5, task_id
            # Found by the running-task sweep (Job objects do not change while a pod is
            # pending): at most one sweep interval and one placement after the deadline.
            limit = deadline + engine.settings.sweeps.running_task_interval_seconds + 6
            assert waits_from + moved[task_id] - submitted_at <= limit, task_id
            reasons = [e["reason"] for e in await events(http, task_id)]
            assert any(r.startswith(f"moving: Job unschedulable in {region}") for r in reasons)
        report = await auditor.audit(expect(tasks, "RUNNING"), timeout=30)
    assert dupes.seen == {}, dupes.seen
    for task_id in movers:
        assert report.tasks[task_id]["region"] != region
    # Long Jobs (they must outlast the deadline and a sweep): stop them, nothing stays.
    for task_id in tasks:
        assert (await http.post(f"/v1/tasks/{task_id}/stop")).status_code == 200
    await auditor.audit(expect(tasks, "STOPPED"), timeout=30)
