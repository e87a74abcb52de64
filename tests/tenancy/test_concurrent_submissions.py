"""Two API replicas (each its own Store and TaskService, as two processes would have)
submitting at once for one business unit, over one SQLite file and over MariaDB: the
unit never goes over its quota, and only admitted tasks get a workflow."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from temporalio.client import Client

from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import TaskService
from meridian.tasks.spec import TaskSpec
from meridian.tenancy.quotas import QuotaExceeded
from tests.api.stage import DEV_REGIONS, FakeClient
from tests.support import mariadb_available, mariadb_database

REPLICAS = 2
THREADS_PER_REPLICA = 3
SUBMISSIONS_PER_THREAD = 6
SPEC = TaskSpec.model_validate(
    {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", "resources": {"cpu": "1", "memory": "1Gi"}},
    }
)


@pytest.fixture(params=["sqlite", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meridian.db'}"
        return
    if not mariadb_available():
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306 (.ci/run starts it)")
    with mariadb_database("meridian_quota") as url:
        yield url


def replica(url: str, quotas: dict[str, object]) -> tuple[TaskService, FakeClient]:
    settings = Settings(regions_file=DEV_REGIONS, quotas={"units": {"ads": quotas}})
    temporal = FakeClient()
    service = TaskService(
        Store(url), cast(Client, temporal), settings, Catalog.default(), load_regions(DEV_REGIONS)
    )
    return service, temporal


def hammer(services: list[TaskService]) -> tuple[list[str], list[QuotaExceeded]]:
    """Every thread submits its tasks as fast as it can, all threads released at once."""
    admitted: list[str] = []
    refused: list[QuotaExceeded] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    ready = threading.Barrier(len(services) * THREADS_PER_REPLICA)

    async def submit_all(service: TaskService, thread: int) -> None:
        # Distinct ids across replicas and threads: the quotas, not id clashes, decide.
        replica_no = services.index(service)
        for i in range(SUBMISSIONS_PER_THREAD):
            task_id = f"t-{replica_no}-{thread}-{i}"
            try:
                task, created = await service.submit(
                    SPEC, task_id=task_id, start=True, idempotency_key=None
                )
            except QuotaExceeded as exc:
                with lock:
                    refused.append(exc)
                continue
            assert created
            with lock:
                admitted.append(task.id)

    def run(service: TaskService, thread: int) -> None:
        ready.wait()
        try:
            asyncio.run(submit_all(service, thread))
        except BaseException as exc:  # reported below, with the thread's name
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(service, n), name=f"replica-{r}-{n}")
        for r, service in enumerate(services)
        for n in range(THREADS_PER_REPLICA)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return admitted, refused


@pytest.mark.parametrize(
    ("quotas", "admits", "quota"),
    [
        ({"max_active_tasks": 5}, 5, "max_active_tasks"),
        ({"cpu": "7", "memory": "100Gi"}, 7, "cpu"),
        # One token, hardly refilled within the test: the burst is all there is.
        ({"submissions_per_second": 0.001, "submission_burst": 4}, 4, "submissions_per_second"),
    ],
)
def test_two_replicas_never_admit_more_than_the_quota(
    url: str, quotas: dict[str, object], admits: int, quota: str
) -> None:
    with Store(url) as store:
        store.migrate()
    replicas = [replica(url, quotas) for _ in range(REPLICAS)]
    try:
        admitted, refused = hammer([service for service, _ in replicas])
        attempts = REPLICAS * THREADS_PER_REPLICA * SUBMISSIONS_PER_THREAD
        assert (len(admitted), len(refused)) == (admits, attempts - admits)
        assert {exc.quota for exc in refused} == {quota}
        assert all(exc.retry_after_seconds >= 1 for exc in refused)
        store = replicas[0][0].store
        assert store.usage("ads").tasks == admits
        assert store.count_tasks_by_status()["SCHEDULING"] == admits  # refused: no row
        started = [task_id for _, temporal in replicas for task_id in temporal.started]
        assert sorted(started) == sorted(admitted)  # refused: no workflow
    finally:
        for service, _ in replicas:
            service.store.close()
