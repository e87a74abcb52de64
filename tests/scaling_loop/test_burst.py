"""A burst of large tasks that does not fit grows the pool, and every task runs."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import task_body
from tests.scaling_loop.world import REGION, world


def big_task(task_id: str, seconds: int) -> dict[str, object]:
    return task_body(
        id=task_id,
        placement={"region": REGION},
        job={
            # 3 of a node's 4 CPUs: one task per node, so 8 tasks need 8 nodes' worth.
            "resources": {"cpu": "3", "memory": "4Gi"},
            "annotations": {"kubesim.io/duration": f"{seconds}s"},
        },
    )


async def test_burst_that_does_not_fit_grows_the_pool_and_every_task_runs(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        before = await w.pool()
        assert before["desired"] == 2
        ids = [f"burst-{i}" for i in range(6)]
        for task_id in ids:
            assert (await w.engine.submit(big_task(task_id, 20))).status_code == 201

        async def all_ran() -> bool:
            return all([await w.ran(task_id) for task_id in ids])

        await w.wait_for("every task of the burst running", all_ran, timeout=90)
        grown = await w.pool()
        # Grew for the demand, within the pool's bounds.
        assert 2 < grown["desired"] <= grown["max"]
        decisions = await w.decisions()
        ups = [d for d in decisions if d["kind"] == "scale_up" and d["applied"]]
        assert ups, decisions
        assert all(d["numbers"]["desired_after"] <= 6 for d in ups)
        # Every task ran in the region it is pinned to, none was moved.
        for task_id in ids:
            task = await w.engine.wait_status(task_id, "RUNNING", "SUCCEEDED", timeout=30)
            assert task["region"] == REGION
            assert task["attempt"] == 1
        detail = (await w.engine.http.get(f"/v1/regions/{REGION}")).json()
        assert detail["pools"][0]["max"] == 6
        assert detail["water_level_history"]
