"""A region whose API is slow but answers: degraded, not dead.

Two seconds per request is far beyond a healthy apiserver, yet every Job there keeps
running and every request is answered. The region must read *degraded* (the slowness is
noticed, and placement prefers other regions), never *down*: nothing is moved or re-run,
no Job is duplicated; once the latency is gone, *up* again.
"""

from __future__ import annotations

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters
from tests.chaos.conftest import uid
from tests.chaos.helpers import PRIMARY, pinned_tasks_through, wait_region_up
from tests.integration.harness import Engine

LATENCY_MS = 2000


async def test_slow_api_degrades_the_region_and_moves_nothing(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine = chaos_engine
    await wait_region_up(engine, timeout=30, what="region never came up")

    tasks = [uid("slow") for _ in range(6)]
    await control.latency(PRIMARY, LATENCY_MS)
    try:
        seen, report = await pinned_tasks_through(
            engine, clusters, auditor, tasks, duration="10s", watch_seconds=22, audit_timeout=120
        )
    finally:
        await control.clear_latency(PRIMARY)

    states = [state for state, _ in seen]
    assert "down" not in states, seen
    assert "degraded" in states, seen  # the slowness was noticed, not ignored
    assert any("slow" in reason for state, reason in seen if state == "degraded"), seen
    for task_id in tasks:
        task = report.tasks[task_id]
        assert task["attempt"] == 1 and task["region"] == PRIMARY, task

    await wait_region_up(engine, timeout=30, what="region did not recover after the latency went")
