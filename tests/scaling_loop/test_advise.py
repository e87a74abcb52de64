"""`advise` decides and reports but changes nothing; the mode switch over REST."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.scaling_loop import load
from tests.scaling_loop.world import REGION, world


async def test_advise_mode_reports_decisions_and_changes_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        http = w.engine.http
        answer = await http.put(f"/v1/regions/{REGION}/scaling/mode", json={"mode": "advise"})
        assert answer.status_code == 200 and answer.json() == {
            "region": REGION,
            "mode": "advise",
            "changed": True,
        }
        nodes = await load.ready_nodes(w)
        # Demand that does not fit (pending pods) and a node gone NotReady.
        for i in range(3):
            await load.create(w, load.pod(f"big-{i}", "3500m"))
        await load.create(w, load.pod("huge", "3500m"))
        sick = nodes[0]
        await w.control.post(f"/sim/regions/{REGION}/nodes/{sick}/ready", json={"ready": False})

        async def advised() -> bool:
            kinds = {d["kind"] for d in await w.decisions()}
            return {"scale_up", "cordon"} <= kinds

        await w.wait_for("advice to grow and to cordon", advised, timeout=30)
        await asyncio.sleep(3.0)  # a few more ticks in which nothing may happen
        decisions = await w.decisions()
        assert all(not d["applied"] and d["numbers"]["mode"] == "advise" for d in decisions)
        pool = await w.pool()
        assert pool["desired"] == 2 and pool["current"] == 2
        node = await w.kube(f"/api/v1/nodes/{sick}")
        assert not (node.get("spec") or {}).get("unschedulable")
        detail = (await http.get(f"/v1/regions/{REGION}")).json()
        assert detail["scaling_mode"] == "advise" and detail["draining"] is False
        assert detail["pools"] == [
            {
                "name": "general",
                "min": 1,
                "desired": 2,
                "max": 6,
                "current": 2,
                "ready": 1,
                "autoscaler_enabled": False,
                "driver": "kubesim",
            }
        ]
        # Back to auto: the same situation is now acted on.
        await http.put(f"/v1/regions/{REGION}/scaling/mode", json={"mode": "auto"})

        async def grown() -> bool:
            return int((await w.pool())["desired"]) > 2

        await w.wait_for("the pool grown once in auto", grown, timeout=20)


async def test_scaling_routes_reject_bad_input(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        http = w.engine.http
        bad = await http.put(f"/v1/regions/{REGION}/scaling/mode", json={"mode": "turbo"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "mode"]
        for method, path in (
            ("GET", "/v1/regions/nowhere-1"),
            ("GET", "/v1/regions/nowhere-1/scaling"),
            ("PUT", "/v1/regions/nowhere-1/scaling/mode"),
        ):
            answer = await http.request(method, path, json={"mode": "auto"})
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["detail"] == "region not found"
        same = await http.put(f"/v1/regions/{REGION}/scaling/mode", json={"mode": "auto"})
        assert same.json()["changed"] is False
        detail = (await http.get(f"/v1/regions/{REGION}")).json()
        # The list entry's health fields are all there.
        for key in ("state", "water_level", "nodes_ready", "pollers", "task_queue", "network"):
            assert key in detail
