"""Task bodies and polling helpers shared by the chaos scenarios."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.harness import task_body

PRIMARY = "aws-us-east-1"
STATUS_PORT = 8080


def batch(task_id: str, duration: str, **overrides: Any) -> dict[str, Any]:
    body = task_body(id=task_id, **overrides)
    body["job"]["annotations"] = {"kubesim.io/duration": duration}
    body["job"]["resources"] = {"cpu": "250m", "memory": "128Mi"}
    return body


def resident(task_id: str, **overrides: Any) -> dict[str, Any]:
    body = task_body(id=task_id, kind="resident", **overrides)
    body["job"]["annotations"] = {}
    body["job"]["resources"] = {"cpu": "250m", "memory": "128Mi"}
    body["job"]["status_port"] = STATUS_PORT
    return body


def preferring(region: str) -> dict[str, Any]:
    """Lands in `region` while it is healthy, yet may move: a preference, not a pin."""
    return {"preferences": [[region]]}


async def wait_until(
    http: httpx.AsyncClient,
    task_ids: list[str],
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> dict[str, float]:
    """Poll every task until `done(task)`; returns each task's time-to-done (seconds)."""
    started = time.monotonic()
    reached: dict[str, float] = {}
    last: dict[str, dict[str, Any]] = {}

    async def one(task_id: str) -> None:
        response = await http.get(f"/v1/tasks/{task_id}")
        if response.status_code != 200:
            return
        task = response.json()
        last[task_id] = task
        if done(task):
            reached[task_id] = time.monotonic() - started

    while len(reached) < len(task_ids):
        pending = [t for t in task_ids if t not in reached]
        await asyncio.gather(*(one(t) for t in pending))
        if len(reached) == len(task_ids):
            break
        if time.monotonic() - started > timeout:
            late = {
                t: (last.get(t, {}).get("status"), last.get(t, {}).get("region"))
                for t in pending
                if t not in reached
            }
            # The first late tasks' histories say why, so a failure can be read, not rerun.
            why = {t: [e["reason"] for e in await events(http, t)][-4:] for t in list(late)[:3]}
            raise AssertionError(
                f"{len(late)} tasks not {what} after {timeout:.0f}s: {late}; events: {why}"
            )
        await asyncio.sleep(interval)
    return reached


async def events(http: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    return list((await http.get(f"/v1/tasks/{task_id}/events")).json()["items"])


async def sweeps(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await http.get("/v1/sweeps", params={"limit": 100})).json()["items"])
