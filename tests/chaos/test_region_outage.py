"""A whole region goes dark under running batch and resident tasks, then comes back."""

from __future__ import annotations

import asyncio
import time

from kubesim.control import AsyncKubesimControl
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, key_of, orphans_of
from tests.chaos.conftest import submit_all, uid
from tests.chaos.helpers import PRIMARY, batch, events, preferring, resident, wait_until
from tests.integration.harness import Engine

# Detection (grace + one health tick + one probe timeout) plus one placement and Job
# start: what "moved within the grace period plus one placement" allows on this 2-core
# machine with the whole engine, kubesim and the test in two processes (about 3.5 s
# measured when idle; the rest is headroom for a loaded CI box).
PLACEMENT_BUDGET_SECONDS = 6.0


async def test_region_outage_moves_everything_and_fences_stale_jobs(
    chaos_engine: Engine, control: AsyncKubesimControl, clusters: Clusters, auditor: Auditor
) -> None:
    engine, http = chaos_engine, chaos_engine.http
    failover = engine.settings.failover
    batches = [uid("out-b") for _ in range(14)]
    residents = [uid("out-r") for _ in range(6)]
    # Tasks elsewhere must not notice the outage at all.
    bystanders = [uid("out-x") for _ in range(4)]
    await submit_all(
        engine,
        [batch(t, "25s", placement=preferring(PRIMARY)) for t in batches]
        + [resident(t, placement=preferring(PRIMARY)) for t in residents]
        + [
            batch(t, "12s", data_source={"provider": "gcp", "region": "europe-west1"})
            for t in bystanders
        ],
    )
    moving = batches + residents
    await wait_until(
        http,
        moving,
        lambda t: t["status"] == "RUNNING" and t["region"] == PRIMARY,
        timeout=45,
        what=f"RUNNING in {PRIMARY}",
    )

    async with DuplicateWatch(
        clusters, moving + bystanders, orphans=orphans_of(engine.store)
    ) as dupes:
        # Times count from before the outage call: the region may be dark (and its
        # grace period running) a while before kubesim's answer comes back.
        before_outage = time.monotonic()
        await control.outage(PRIMARY)
        call_seconds = time.monotonic() - before_outage
        moved = {
            task_id: seconds + call_seconds
            for task_id, seconds in (
                await wait_until(
                    http,
                    moving,
                    lambda t: t["status"] == "RUNNING" and t["region"] not in (None, PRIMARY),
                    timeout=60,
                    what="RUNNING elsewhere",
                )
            ).items()
        }
        detection = failover.region_grace_seconds + 2.5 * failover.health_interval_seconds
        worst = max(moved.values())
        assert worst <= detection + PLACEMENT_BUDGET_SECONDS, (
            f"worst move {worst:.1f}s > {detection:.1f}s detection + one placement: {moved}"
        )
        # Nothing moved before the grace period: a short blip must not move tasks.
        assert min(moved.values()) >= failover.region_grace_seconds - 0.5, moved

        regions = {r["name"]: r for r in (await http.get("/v1/regions")).json()["items"]}
        assert regions[PRIMARY]["state"] == "down"
        # The change is an event, with the state it left and why.
        changes = (await http.get(f"/v1/regions/{PRIMARY}/events")).json()["items"]
        assert changes[0]["state"] == "down" and changes[0]["previous_state"] == "degraded"
        assert "unreachable" in changes[0]["reason"] or "refused" in changes[0]["reason"].lower()
        detail = (await http.get(f"/v1/regions/{PRIMARY}")).json()
        assert detail["events"][0] == changes[0]
        orphans = engine.store.list_orphans(region=PRIMARY)
        # Orphans and Jobs name their task by its key (its workflow id).
        assert {o.task_id for o in orphans} >= {key_of(t) for t in moving}, (
            "every left-behind Job is fenced"
        )

        # The region returns with its stale Jobs still there: the job sweep removes them.
        await control.restore(PRIMARY)
        restored_at = time.monotonic()
        sweep_deadline = engine.settings.sweeps.job_interval_seconds * 2 + 15

        def stale_left() -> list[str]:
            live = clusters.live_jobs([PRIMARY])
            return [t for t in moving if key_of(t) in live]

        while stale := await asyncio.to_thread(stale_left):
            assert time.monotonic() - restored_at < sweep_deadline, f"stale Jobs left: {stale}"
            await asyncio.sleep(0.5)
        await engine.wait_regions_up(timeout=30)

        report = await auditor.audit(
            expect(batches, "SUCCEEDED")
            | expect(residents, "RUNNING")
            | expect(bystanders, "SUCCEEDED"),
            timeout=60,
        )
    assert dupes.samples > 10
    assert dupes.seen == {}, f"two live Jobs at once: {dupes.seen}"
    # Fenced leftovers live only until the job sweep after the region's return.
    assert dupes.longest_fenced() <= sweep_deadline, dupes.fenced
    moving_keys = {key_of(t) for t in moving}
    left = [o for o in engine.store.list_orphans(region=PRIMARY) if o.task_id in moving_keys]
    assert left == [], f"orphans not marked deleted: {left}"
    for task_id in moving:
        task = report.tasks[task_id]
        assert task["attempt"] == 2, task  # one move, no app retry, no extra attempt
        reasons = [e["reason"] for e in await events(http, task_id)]
        assert any(r.startswith("moving: region aws-us-east-1 down") for r in reasons), reasons
    for task_id in bystanders:
        assert report.tasks[task_id]["attempt"] == 1

    # Residents run until stopped; stopping leaves nothing behind anywhere.
    for task_id in residents:
        assert (await http.post(f"/v1/tasks/{task_id}/stop")).status_code == 200
    await auditor.audit(expect(residents, "STOPPED"), timeout=30)
