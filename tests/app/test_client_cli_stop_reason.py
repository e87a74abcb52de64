"""`meridian task stop ID --reason ...`: the stop route takes an optional reason, which the
task's events then show; without a body it stops as before."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.stage import staged
from tests.integration.harness import task_body


async def _pending(http: httpx.AsyncClient, task_id: str) -> None:
    created = await http.post("/v1/tasks", json=task_body(id=task_id, start=False))
    assert created.status_code == 201, created.text


async def test_stop_records_the_callers_reason(tmp_path: Path) -> None:
    async with staged(tmp_path) as stage:
        await _pending(stage.http, "why-1")
        stopped = await stage.http.post("/v1/tasks/why-1/stop", json={"reason": "ops: quota"})
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "STOPPED"
        events = (await stage.http.get("/v1/tasks/why-1/events")).json()["items"]
        assert events[-1]["status"] == "STOPPED"
        assert events[-1]["reason"] == "ops: quota"


async def test_stop_without_a_body_still_works(tmp_path: Path) -> None:
    async with staged(tmp_path) as stage:
        await _pending(stage.http, "why-2")
        stopped = await stage.http.post("/v1/tasks/why-2/stop")
        assert stopped.status_code == 200, stopped.text
        events = (await stage.http.get("/v1/tasks/why-2/events")).json()["items"]
        assert events[-1]["reason"] == "stopped by user"


async def test_an_empty_or_huge_reason_is_a_422(tmp_path: Path) -> None:
    async with staged(tmp_path) as stage:
        await _pending(stage.http, "why-3")
        for reason in ("", "x" * 2000):
            answer = await stage.http.post("/v1/tasks/why-3/stop", json={"reason": reason})
            assert answer.status_code == 422, answer.text
            assert answer.json()["detail"][0]["loc"][-1] == "reason"
