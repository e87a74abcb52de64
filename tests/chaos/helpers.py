"""Task bodies and polling helpers shared by the chaos scenarios."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.chaos.audit import Auditor, AuditReport, Clusters, DuplicateWatch, expect, orphans_of
from tests.chaos.conftest import submit_all
from tests.integration.harness import Engine, task_body

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


async def region_status(engine: Engine, name: str = PRIMARY) -> dict[str, Any]:
    """One region as `GET /v1/regions` shows it."""
    regions = (await engine.http.get("/v1/regions")).json()["items"]
    return dict(next(r for r in regions if r["name"] == name))


async def wait_region_up(engine: Engine, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while (await region_status(engine))["state"] != "up":
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.5)


async def pinned_tasks_through(
    engine: Engine,
    clusters: Clusters,
    auditor: Auditor,
    tasks: list[str],
    *,
    duration: str,
    watch_seconds: float,
    audit_timeout: float,
) -> tuple[list[tuple[str, str]], AuditReport]:
    """Run `tasks` pinned to PRIMARY (one attempt each) while a fault is on it.

    Returns PRIMARY's (state, reason) every half second for `watch_seconds` — make it
    longer than the grace period, so a wrong "down" would show — and the audit of every
    task ending SUCCEEDED, with no Job run twice. Pinned, a task wrongly moved for a
    region declared down would be fenced and re-run there as attempt 2 once it "came
    back".
    """
    seen: list[tuple[str, str]] = []
    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(engine.store)) as dupes:
        await submit_all(
            engine,
            [
                batch(t, duration, placement={"region": PRIMARY}, retry={"max_attempts": 1})
                for t in tasks
            ],
        )
        watch_until = time.monotonic() + watch_seconds
        while time.monotonic() < watch_until:
            region = await region_status(engine)
            reason = f"{region.get('reason')} [latency {region.get('api_latency_ms')} ms]"
            seen.append((str(region["state"]), reason))
            await asyncio.sleep(0.5)
        report = await auditor.audit(expect(tasks, "SUCCEEDED"), timeout=audit_timeout)
    assert dupes.seen == {}, dupes.seen
    return seen, report
