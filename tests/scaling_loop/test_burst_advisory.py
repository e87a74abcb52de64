"""The control loop chooses to burst rather than grow a slow pool: a waiting `auto` task
runs on the serverless pods, the decision and its numbers are in the API and the task's
placement, and once the nodes have room again new tasks go back to them while the
burst task stays where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.harness import task_body
from tests.scaling_loop.world import HERE, REGION, World, world

VIRTUAL_NODE = "fargate-us-east-1"


def auto_task(task_id: str, seconds: int) -> dict[str, Any]:
    # 3 of a node's 4 CPUs: one per node.
    return task_body(
        id=task_id,
        placement={"region": REGION},
        job={
            "resources": {"cpu": "3", "memory": "4Gi"},
            "annotations": {"kubesim.io/duration": f"{seconds}s"},
        },
    )


async def nodes_full(w: World) -> bool:
    """Placement (through the probe) sees no node with room for one more such task."""
    body = task_body(
        placement={"region": REGION, "capacity": "nodes"},
        job={"resources": {"cpu": "3", "memory": "4Gi"}},
    )
    answer = (await w.engine.http.post("/v1/placement:dry-run", json=body)).json()
    return answer["chosen"] is None


async def test_the_loop_bursts_instead_of_growing_a_slow_pool_and_nodes_come_back(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, regions=HERE / "regions_burst.yaml") as w:
        for task_id in ("fill-1", "fill-2"):
            # Long enough never to end by themselves: the test stops them (no timing).
            assert (await w.engine.submit(auto_task(task_id, 300))).status_code == 201
        for task_id in ("fill-1", "fill-2"):
            await w.engine.wait_status(task_id, "RUNNING", timeout=30)
        await w.wait_for("the nodes seen full", lambda: nodes_full(w), timeout=30)

        assert (await w.engine.submit(auto_task("waits", 60))).status_code == 201

        async def on_virtual_node() -> bool:
            return await w.node_of("waits") == VIRTUAL_NODE

        await w.wait_for("the waiting task on the serverless pods", on_virtual_node, 40)
        decisions = await w.decisions()
        bursts = [d for d in decisions if d["kind"] == "burst"]
        assert bursts and bursts[-1]["applied"], decisions
        burst = bursts[-1]
        assert "a new slow node takes 300s to boot, longer than the 60s" in burst["reason"]
        comparison = burst["numbers"]["comparison"]
        assert comparison["grow"]["pool"] == "slow"
        assert comparison["grow"]["boot_seconds"] == 300
        assert comparison["burst"]["kind"] == "fargate"
        assert comparison["burst"]["cost_per_hour"] > 0
        # It burst instead of growing: the slow pool was never asked for a node.
        assert not [d for d in decisions if d["kind"] == "scale_up"], decisions
        assert (await w.pool(name="slow"))["desired"] == 0
        placement = (await w.engine.http.get("/v1/tasks/waits/placement")).json()
        assert "the region control loop advises bursting" in placement["reason"]

        # The fillers end: the nodes have room again, the advisory lapses (recorded),
        # and a new task goes to a node, while the burst task stays where it is.
        for task_id in ("fill-1", "fill-2"):
            await w.engine.http.post(f"/v1/tasks/{task_id}/stop")

        async def lapsed() -> bool:
            detail = (await w.engine.http.get(f"/v1/regions/{REGION}")).json()
            return detail["burst_advised"] is False

        await w.wait_for("the advisory lapsed", lapsed, timeout=40)
        assert any(
            d["kind"] == "none" and d["numbers"]["cause"] == "room" for d in await w.decisions()
        )
        assert (await w.engine.submit(auto_task("after", 5))).status_code == 201
        await w.engine.wait_status("after", "RUNNING", "SUCCEEDED", timeout=30)
        after = (await w.engine.http.get("/v1/tasks/after/placement")).json()
        assert after["chosen"] == REGION and "serverless" not in after["reason"], after
        waits = await w.engine.wait_status("waits", "RUNNING", timeout=10)
        assert waits["attempt"] == 1
        assert await w.node_of("waits") == VIRTUAL_NODE
