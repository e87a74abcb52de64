"""Load that is not Meridian tasks: plain pods placed on chosen nodes, to drive the water
level up and down at will."""

from __future__ import annotations

from typing import Any

import httpx

from tests.scaling_loop.world import REGION, World

NAMESPACE = "default"


def pod(name: str, cpu: str, node: str | None = None, **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
            }
        ],
    }
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        # Runs until deleted: the test decides when the load goes away.
        "metadata": {"name": name, "labels": labels, "annotations": {"kubesim.io/duration": "1h"}},
        "spec": spec,
    }


async def create(w: World, body: dict[str, Any], region: str = REGION) -> None:
    async with httpx.AsyncClient(base_url=w.kubesim.region_urls[region]) as api:
        answer = await api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=body)
        assert answer.status_code in (200, 201), answer.text


async def delete_all(w: World, region: str = REGION) -> None:
    async with httpx.AsyncClient(base_url=w.kubesim.region_urls[region]) as api:
        pods = (await api.get(f"/api/v1/namespaces/{NAMESPACE}/pods")).json()
        for item in pods.get("items") or []:
            await api.delete(
                f"/api/v1/namespaces/{NAMESPACE}/pods/{item['metadata']['name']}",
                params={"gracePeriodSeconds": "0"},
            )


async def ready_nodes(w: World, region: str = REGION) -> list[str]:
    nodes = await w.kube("/api/v1/nodes", region)
    ready = []
    for node in nodes.get("items") or []:
        conditions = (node.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            if not (node.get("spec") or {}).get("unschedulable"):
                ready.append(str(node["metadata"]["name"]))
    return sorted(ready)
