"""The engine's own processes crash (`meridian up`): running Jobs must not notice.

The central worker, the unit worker and the Temporal dev server are SIGKILLed (the
supervisor of `meridian up` restarts them, Temporal on its SQLite file); finally
`meridian up` itself is restarted. Jobs keep running in kubesim meanwhile, and every
task's state catches up from the cluster afterwards, on its first attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from meridian.regions.config import load_regions
from meridian.settings import Settings
from meridian.store import Store
from tests.chaos.audit import Auditor, Clusters, DuplicateWatch, expect, key_of, orphans_of
from tests.chaos.conftest import DEV_REGIONS, uid
from tests.chaos.helpers import batch, resident, wait_until
from tests.chaos.upsystem import UpSystem
from tests.support import admin_headers

SWEEP_SECONDS = 5.0
DATA_SOURCES = [
    ("aws", "us-east-1"),
    ("azure", "eastus"),
    ("gcp", "europe-west1"),
    ("alibaba", "cn-hangzhou"),
]
ENV = {
    # Shorter sweeps and backstop keep the suite fast; the region grace stays at its
    # default (10 s), which is what lets a restarted unit worker come back before its
    # regions are declared down.
    "MERIDIAN_SWEEPS__RUNNING_TASK_INTERVAL_SECONDS": str(SWEEP_SECONDS),
    "MERIDIAN_SWEEPS__JOB_INTERVAL_SECONDS": str(SWEEP_SECONDS),
    "MERIDIAN_STATUS_BACKSTOP_SECONDS": "10",
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, chaos_db: str) -> Iterator[UpSystem]:
    up = UpSystem(tmp_path_factory.mktemp("up") / "state", chaos_db, ENV)
    up.start()
    try:
        yield up
    finally:
        up.stop()


@pytest_asyncio.fixture(scope="module")
async def world(system: UpSystem, chaos_db: str) -> AsyncIterator[dict[str, Any]]:
    """What the scenarios read the system with: API, Temporal, clusters, database."""
    temporal = await Client.connect(system.temporal_address, data_converter=pydantic_data_converter)
    names = load_regions(DEV_REGIONS).names
    clusters = Clusters(system.kubeconfig, names)
    store = Store.from_settings(Settings(database_url=chaos_db))
    headers = admin_headers(system.state_dir)
    http = httpx.AsyncClient(base_url=system.api_url, timeout=30.0, headers=headers)
    try:
        yield {
            "http": http,
            "clusters": clusters,
            "store": store,
            "auditor": Auditor(
                system.api_url, temporal, clusters, headers=headers, db_reader=store
            ),
        }
    finally:
        await http.aclose()
        clusters.close()
        store.close()


async def submit(http: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[str]:
    # The API may be restarting (its own crash, or Temporal's): retry briefly.
    ids = []
    for body in bodies:
        for _ in range(60):
            try:
                response = await http.post("/v1/tasks", json=body)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (200, 201):
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"could not submit {body['id']}")
        ids.append(str(body["id"]))
    return ids


def spread(prefix: str, n: int, duration: str) -> list[dict[str, Any]]:
    return [
        batch(uid(prefix), duration, data_source={"provider": p, "region": r})
        for i in range(n)
        for p, r in [DATA_SOURCES[i % len(DATA_SOURCES)]]
    ]


async def jobs_untouched(clusters: Clusters, task_ids: list[str]) -> None:
    """Every task's first-attempt Job is still there and live (or completed): no copy."""
    live = await asyncio.to_thread(clusters.live_jobs)
    for task_id in task_ids:
        jobs = live.get(key_of(task_id), [])
        assert [j.attempt for j in jobs] in ([], [1]), (task_id, jobs)


async def test_central_worker_killed_and_restarted(system: UpSystem, world: dict[str, Any]) -> None:
    http, clusters = world["http"], world["clusters"]
    tasks = await submit(http, spread("cw", 12, "10s"))
    await wait_until(http, tasks, lambda t: t["status"] == "RUNNING", timeout=40, what="RUNNING")
    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(world["store"])) as dupes:
        old = await asyncio.to_thread(system.kill_child, "meridian.app.cli", "--role central")
        await asyncio.to_thread(
            system.wait_child_restarted, old, "meridian.app.cli", "--role central"
        )
        # Nobody ran the workflows meanwhile; their Jobs did not care.
        await jobs_untouched(clusters, tasks)
        report = await world["auditor"].audit(expect(tasks, "SUCCEEDED"), timeout=60)
    assert dupes.seen == {}
    assert all(t["attempt"] == 1 for t in report.tasks.values()), report.tasks


async def test_unit_worker_killed_mid_stream(system: UpSystem, world: dict[str, Any]) -> None:
    http, clusters = world["http"], world["clusters"]
    tasks = await submit(http, spread("uw", 12, "4s"))
    await wait_until(http, tasks, lambda t: t["status"] == "RUNNING", timeout=40, what="RUNNING")
    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(world["store"])) as dupes:
        # Killed while its watches stream and its activities run; the Jobs end meanwhile.
        old = await asyncio.to_thread(system.kill_child, "meridian.app.cli", "--role unit")
        restarted_at = time.monotonic()
        await asyncio.to_thread(system.wait_child_restarted, old, "meridian.app.cli", "--role unit")
        # The restarted watch re-lists; the sweeps back it up: within one interval of
        # the worker's return (plus its start-up), every completion is known.
        await wait_until(
            http,
            tasks,
            lambda t: t["status"] == "SUCCEEDED",
            timeout=SWEEP_SECONDS + 20,
            what="SUCCEEDED",
        )
        report = await world["auditor"].audit(expect(tasks, "SUCCEEDED"), timeout=30)
    assert time.monotonic() - restarted_at < 60
    assert dupes.seen == {}
    assert all(t["attempt"] == 1 for t in report.tasks.values()), report.tasks


async def test_temporal_killed_and_restarted_on_its_sqlite_file(
    system: UpSystem, world: dict[str, Any]
) -> None:
    http, clusters = world["http"], world["clusters"]
    batches = await submit(http, spread("tp", 12, "8s"))
    residents = await submit(http, [resident(uid("tp-r")) for _ in range(3)])
    tasks = batches + residents
    await wait_until(http, tasks, lambda t: t["status"] == "RUNNING", timeout=40, what="RUNNING")
    async with DuplicateWatch(clusters, tasks, orphans=orphans_of(world["store"])) as dupes:
        old = await asyncio.to_thread(system.kill_child, "temporal", "start-dev")
        killed_at = time.monotonic()
        # With Temporal gone the Jobs run on, and the batch ones finish in the cluster.
        await jobs_untouched(clusters, tasks)
        await asyncio.to_thread(system.wait_child_restarted, old, "temporal", "start-dev")
        report = await world["auditor"].audit(
            expect(batches, "SUCCEEDED") | expect(residents, "RUNNING"), timeout=90
        )
    assert dupes.seen == {}
    assert all(t["attempt"] == 1 for t in report.tasks.values()), {
        k: (t["status"], t["attempt"]) for k, t in report.tasks.items()
    }
    assert time.monotonic() - killed_at < 120
    for task_id in residents:
        assert (await http.post(f"/v1/tasks/{task_id}/stop")).status_code == 200
    await world["auditor"].audit(expect(residents, "STOPPED"), timeout=30)


async def test_meridian_up_restarted(system: UpSystem, world: dict[str, Any]) -> None:
    http = world["http"]
    batches = await submit(http, spread("rs", 8, "6s"))
    residents = await submit(http, [resident(uid("rs-r")) for _ in range(3)])
    tasks = batches + residents
    await wait_until(http, tasks, lambda t: t["status"] == "RUNNING", timeout=40, what="RUNNING")
    await asyncio.to_thread(system.stop)
    await asyncio.to_thread(system.start)
    # kubesim keeps its clusters in its state file across the restart, as a real
    # cluster outlives its control plane: the restarted engine re-attaches to the
    # running Jobs instead of running anything twice.
    report = await world["auditor"].audit(
        expect(batches, "SUCCEEDED") | expect(residents, "RUNNING"), timeout=90
    )
    attempts = {k: (t["status"], t["attempt"]) for k, t in report.tasks.items()}
    assert all(t["attempt"] == 1 for t in report.tasks.values()), attempts
    for task_id in residents:
        assert (await http.post(f"/v1/tasks/{task_id}/stop")).status_code == 200
    await world["auditor"].audit(expect(residents, "STOPPED"), timeout=30)
