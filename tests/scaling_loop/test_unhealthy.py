"""A NotReady node is cordoned and drained (Eviction API, PodDisruptionBudgets
respected), and the Meridian tasks on it move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.harness import task_body
from tests.scaling_loop.world import OTHER, REGION, World, world


def plain_pod(name: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
        },
    }


async def _create(w: World, path: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=w.kubesim.region_urls[REGION]) as api:
        answer = await api.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text


async def test_not_ready_node_is_cordoned_drained_and_its_tasks_move(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ids = ["sick-1", "sick-2"]
        for task_id in ids:
            body = task_body(
                id=task_id,
                placement={"regions": [REGION, OTHER]},
                job={
                    "resources": {"cpu": "500m", "memory": "512Mi"},
                    "annotations": {"kubesim.io/duration": "300s"},
                },
            )
            assert (await w.engine.submit(body)).status_code == 201
        for task_id in ids:
            await w.engine.wait_status(task_id, "RUNNING", timeout=30)
        nodes = {task_id: await w.node_of(task_id) for task_id in ids}
        sick = nodes["sick-1"]
        assert sick is not None
        on_sick = [t for t, n in nodes.items() if n == sick]
        # Two bystanders on the sick node: one free to go, one guarded by a PDB.
        await _create(w, "/api/v1/namespaces/default/pods", plain_pod("free", sick, {"app": "f"}))
        await _create(
            w, "/api/v1/namespaces/default/pods", plain_pod("guarded", sick, {"app": "g"})
        )
        await _create(
            w,
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "guard"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "g"}}},
            },
        )

        async def bystanders_running() -> bool:
            pods = await w.kube("/api/v1/namespaces/default/pods")
            phases = [(p.get("status") or {}).get("phase") for p in pods["items"]]
            return phases.count("Running") == 2

        await w.wait_for("bystanders running", bystanders_running, timeout=20)
        answer = await w.control.post(
            f"/sim/regions/{REGION}/nodes/{sick}/ready", json={"ready": False}
        )
        assert answer.status_code == 200

        async def cordoned() -> bool:
            node = await w.kube(f"/api/v1/nodes/{sick}")
            return bool((node.get("spec") or {}).get("unschedulable"))

        await w.wait_for("the NotReady node cordoned", cordoned, timeout=20)

        async def moved() -> bool:
            for task_id in on_sick:
                task = await w.engine.task(task_id)
                if task["attempt"] < 2 or task["status"] != "RUNNING":
                    return False
            return True

        await w.wait_for("the tasks of the sick node running elsewhere", moved, timeout=60)
        for task_id in on_sick:
            events = await w.events(task_id)
            assert any("node-unhealthy" in e["reason"] for e in events), events
            assert await w.node_of(task_id, REGION) != sick
        # Tasks on healthy nodes stayed where they were.
        for task_id in set(ids) - set(on_sick):
            assert (await w.engine.task(task_id))["attempt"] == 1

        async def free_evicted() -> bool:
            pods = await w.kube("/api/v1/namespaces/default/pods")
            return [p["metadata"]["name"] for p in pods["items"]] == ["guarded"]

        # The free pod is evicted; the PDB keeps the guarded one (429, retried later).
        await w.wait_for("the unguarded pod evicted", free_evicted, timeout=20)
        decisions = await w.decisions()
        kinds = {(d["kind"], d["target"]) for d in decisions if d["applied"]}
        assert {("cordon", sick), ("drain", sick)} <= kinds
        drain = next(d for d in decisions if d["kind"] == "drain" and d["target"] == sick)
        # The decision names tasks by their key (the workflow id: unit-qualified).
        keys = [(await w.engine.task(t))["workflow_id"] for t in on_sick]
        assert sorted(drain["numbers"]["task_ids"]) == sorted(keys)
        # Placement no longer offers the sick node's capacity, and the node comes back
        # into service once healthy again.
        await w.control.post(f"/sim/regions/{REGION}/nodes/{sick}/ready", json={"ready": True})

        async def uncordoned() -> bool:
            return not await cordoned()

        await w.wait_for("the recovered node uncordoned", uncordoned, timeout=30)
