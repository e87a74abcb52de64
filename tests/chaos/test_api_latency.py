"""A region whose API is slow but answers: degraded, not dead.

Two seconds per request is far beyond a healthy apiserver, yet every Job there keeps
running and every request is answered. The region must read *degraded* (the slowness is
noticed, and placement prefers other regions), never *down*: nothing is moved or re-run,
no Job is duplicated; once the latency is gone, *up* again.
"""

from __future__ import annotations

import asyncio
import time

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, orphans_of
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import PRIMARY, batch
from tests.integration.harness import Engine

LATENCY_MS = 2000


async def _region(engine: Engine) -> dict[str, object]:
    regions = (await engine.http.get("/v1/regions")).json()["items"]
    return dict(next(r for r in regions if r["name"] == PRIMARY))


async def test_slow_api_degrades_the_region_and_moves_nothing(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine = chaos_engine
    deadline = time.monotonic() + 30
    while (await _region(engine))["state"] != "up":
        assert time.monotonic() < deadline, "region never came up"
        await asyncio.sleep(0.5)

    tasks = [uid("slow") for _ in range(6)]
    seen: list[tuple[str, str]] = []
    await control.latency(PRIMARY, LATENCY_MS)
    try:
        async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
            # Pinned: were the region wrongly declared down, these would be fenced and
            # re-run there as attempt 2 once it "came back".
            await submit_all(
                engine,
                [
                    batch(t, "10s", placement={"region": PRIMARY}, retry={"max_attempts": 1})
                    for t in tasks
                ],
            )
            # Longer than the grace period (10 s), so a wrong "down" would have happened.
            watch_until = time.monotonic() + 22
            while time.monotonic() < watch_until:
                region = await _region(engine)
                reason = f"{region.get('reason')} [latency {region.get('api_latency_ms')} ms]"
                seen.append((str(region["state"]), reason))
                await asyncio.sleep(0.5)
            report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=120)
        assert dupes.seen == {}, dupes.seen
    finally:
        await control.clear_latency(PRIMARY)

    states = [state for state, _ in seen]
    assert "down" not in states, seen
    assert "degraded" in states, seen  # the slowness was noticed, not ignored
    assert any("slow" in reason for state, reason in seen if state == "degraded"), seen
    for task_id in tasks:
        task = report.tasks[task_id]
        assert task["attempt"] == 1 and task["region"] == PRIMARY, task

    deadline = time.monotonic() + 30
    while (await _region(engine))["state"] != "up":
        assert time.monotonic() < deadline, "region did not recover after the latency went"
        await asyncio.sleep(0.5)
