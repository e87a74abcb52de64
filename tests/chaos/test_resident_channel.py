"""The resident WebSocket channel: failing moves, silence is suspect, a gone pod moves."""

from __future__ import annotations

import asyncio
import time

from kubesim.control import AsyncKubesimControl
from meridian.tasks.contracts import QUERY_STATE, TaskProgress
from meridian.tasks.spec import job_name_for
from tests.chaos.audit import (
    NAMESPACE,
    Auditor,
    Clusters,
    DuplicateWatch,
    expect,
    key_of,
    orphans_of,
)
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import PRIMARY, events, preferring, resident, wait_until
from tests.integration.harness import Engine


async def _start_residents(engine: Engine, prefix: str, n: int) -> list[str]:
    # max_attempts 1: a resident whose channel trouble were taken for its own failure
    # would end FAILED instead of moving.
    tasks = [uid(prefix) for _ in range(n)]
    await submit_all(
        engine,
        [resident(t, placement=preferring(PRIMARY), retry={"max_attempts": 1}) for t in tasks],
    )
    await wait_until(
        engine.http,
        tasks,
        lambda t: t["status"] == "RUNNING" and t["region"] == PRIMARY,
        timeout=40,
        what=f"RUNNING in {PRIMARY}",
    )
    return tasks


async def _pod_name(clusters: Clusters, task_id: str, attempt: int = 1) -> str:
    job_name = job_name_for(key_of(task_id), attempt)
    pods = await asyncio.to_thread(clusters.pods_of, PRIMARY, job_name)
    return str(pods[0].metadata.name)


async def _resident_state(engine: Engine, task_id: str) -> str | None:
    progress = await engine.client.get_workflow_handle(key_of(task_id)).query(
        QUERY_STATE, result_type=TaskProgress
    )
    state = progress.resident_state
    return None if state is None else str(state)


async def test_resident_channel_failing_silent_and_gone(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    heartbeat = engine.settings.failover.resident_heartbeat_timeout_seconds
    failing = await _start_residents(engine, "rs-fail", 5)
    silent = await _start_residents(engine, "rs-quiet", 5)
    gone = await _start_residents(engine, "rs-gone", 5)
    everyone = failing + silent + gone

    async with DuplicateWatch(clusters, everyone, orphans=orphans_of(engine.store)) as dupes:
        # Every channel must have reported healthy first, or "no move" below proves nothing.
        for task_id in everyone:
            for _ in range(40):
                if await _resident_state(engine, task_id) == "healthy":
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(f"{task_id}: resident channel never reported healthy")
        for task_id in failing:
            pod = await _pod_name(clusters, task_id)
            await control.set_pod_status(PRIMARY, NAMESPACE, pod, "failing")
        for task_id in silent + gone:
            pod = await _pod_name(clusters, task_id)
            await control.set_pod_status(PRIMARY, NAMESPACE, pod, "silent")
        silenced_at = time.monotonic()

        # failing → moved at once (no grace: the task itself says it is in trouble).
        await wait_until(
            http,
            failing,
            lambda t: t["status"] == "RUNNING" and t["region"] != PRIMARY,
            timeout=20,
            what="moved",
        )
        # silent, pod alive → suspect, verified with the API, and left alone.
        for task_id in silent:
            for _ in range(int(heartbeat * 4 / 0.25)):
                if await _resident_state(engine, task_id) == "suspect":
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(f"{task_id}: silence never made it suspect")
        # silent, then the pod is gone → confirmed by the API → moved.
        for task_id in gone:
            pod = await _pod_name(clusters, task_id)
            await asyncio.to_thread(
                clusters.core(PRIMARY).delete_namespaced_pod, pod, NAMESPACE, grace_period_seconds=0
            )
        await wait_until(
            http,
            gone,
            lambda t: t["status"] == "RUNNING" and t["region"] != PRIMARY,
            timeout=heartbeat * 2 + 15,
            what="moved",
        )
        # Several heartbeat timeouts of silence later the silent ones are still in place.
        remaining = heartbeat * 3 - (time.monotonic() - silenced_at)
        if remaining > 0:
            await asyncio.sleep(remaining)  # the claim under test is "nothing happens"
        report = await auditor.audit(expect(everyone, "RUNNING"), timeout=30)
    assert dupes.seen == {}, dupes.seen
    for task_id in silent:
        task = report.tasks[task_id]
        assert (task["region"], task["attempt"]) == (PRIMARY, 1), task
    for task_id in failing + gone:
        task = report.tasks[task_id]
        assert task["attempt"] == 2 and task["region"] != PRIMARY, task
    for task_id in failing:
        reasons = [e["reason"] for e in await events(http, task_id)]
        assert any("resident channel reports failing" in r for r in reasons), reasons
    for task_id in everyone:
        assert (await http.post(f"/v1/tasks/{task_id}/stop")).status_code == 200
    await auditor.audit(expect(everyone, "STOPPED"), timeout=30)
