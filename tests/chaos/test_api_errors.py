"""A region whose API answers a share of requests with 500/503/429: flaky, not dead.

The region must read *degraded*, never *down*: its tasks keep running where they are,
none is moved or re-run for it, no Job is duplicated; once the errors stop, *up* again.
"""

from __future__ import annotations

import asyncio
import time

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, orphans_of
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import PRIMARY, batch
from tests.integration.harness import Engine

ERROR_RATE = 0.4


async def _region_state(engine: Engine) -> str:
    regions = (await engine.http.get("/v1/regions")).json()["items"]
    return str(next(r["state"] for r in regions if r["name"] == PRIMARY))


async def test_flaky_api_degrades_the_region_and_moves_nothing(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine = chaos_engine
    deadline = time.monotonic() + 30
    while await _region_state(engine) != "up":
        assert time.monotonic() < deadline, "region never came up"
        await asyncio.sleep(0.5)

    tasks = [uid("flaky") for _ in range(8)]
    seen: list[str] = []
    await control.api_errors(PRIMARY, ERROR_RATE, codes=[500, 503, 429], retry_after=0.2)
    try:
        async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
            # Pinned: were the region wrongly declared down, these would be fenced and
            # re-run there as attempt 2 once it "came back".
            await submit_all(
                engine,
                [
                    batch(t, "8s", placement={"region": PRIMARY}, retry={"max_attempts": 1})
                    for t in tasks
                ],
            )
            # Longer than the grace period (10 s), so a wrong "down" would have happened.
            watch_until = time.monotonic() + 20
            while time.monotonic() < watch_until:
                seen.append(await _region_state(engine))
                await asyncio.sleep(0.5)
            report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=90)
        assert dupes.seen == {}, dupes.seen
    finally:
        await control.clear_api_errors(PRIMARY)

    assert "down" not in seen, seen
    assert "degraded" in seen, seen  # the error rate was noticed, not ignored
    for task_id in tasks:
        task = report.tasks[task_id]
        assert task["attempt"] == 1 and task["region"] == PRIMARY, task

    # Errors gone: the smoothed error rate decays and the region is up again.
    deadline = time.monotonic() + 30
    while await _region_state(engine) != "up":
        assert time.monotonic() < deadline, "region did not recover after the errors stopped"
        await asyncio.sleep(0.5)
