"""A region whose API answers a share of requests with 500/503/429: flaky, not dead.

The region must read *degraded*, never *down*: its tasks keep running where they are,
none is moved or re-run for it, no Job is duplicated; once the errors stop, *up* again.
"""

from __future__ import annotations

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters
from tests.chaos.conftest import uid
from tests.chaos.helpers import PRIMARY, pinned_tasks_through, wait_region_up
from tests.integration.harness import Engine

ERROR_RATE = 0.4


async def test_flaky_api_degrades_the_region_and_moves_nothing(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine = chaos_engine
    await wait_region_up(engine, timeout=30, what="region never came up")

    tasks = [uid("flaky") for _ in range(8)]
    await control.api_errors(PRIMARY, ERROR_RATE, codes=[500, 503, 429], retry_after=0.2)
    try:
        # Longer than the grace period (10 s), so a wrong "down" would have happened.
        seen, report = await pinned_tasks_through(
            engine, clusters, auditor, tasks, duration="8s", watch_seconds=20, audit_timeout=90
        )
    finally:
        await control.clear_api_errors(PRIMARY)

    states = [state for state, _ in seen]
    assert "down" not in states, seen
    assert "degraded" in states, seen  # the error rate was noticed, not ignored
    for task_id in tasks:
        task = report.tasks[task_id]
        assert task["attempt"] == 1 and task["region"] == PRIMARY, task

    # Errors gone: the smoothed error rate decays and the region is up again.
    await wait_region_up(engine, timeout=30, what="region did not recover after the errors stopped")
