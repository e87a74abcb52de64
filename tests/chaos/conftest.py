"""Chaos fixtures: a fresh world per test module.

Chaos scenarios break things (regions, nodes, watches, processes), so each module gets
its own Temporal dev server, its own kubesim and its own MariaDB database: nothing one
module breaks can leak into the next, and the singleton region monitor and the sweep
schedules of one engine never meet another engine's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from kubesim.control import AsyncKubesimControl
from kubesim.process import KubesimProcess, start_kubesim
from tests.chaos.audit import Auditor, Clusters
from tests.conftest import REPO
from tests.integration.harness import Engine, engine_settings
from tests.support import mariadb_available, mariadb_database, start_dev_server

DEV_REGIONS = REPO / "infra" / "regions" / "dev.yaml"
# A lost node fails its pods after this long (dev default 5 s): shorter keeps the suite fast.
CHAOS_EVICTION_DELAY = "2s"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.mysql)


def chaos_regions_file(directory: Path) -> Path:
    data = yaml.safe_load(DEV_REGIONS.read_text())
    data.setdefault("defaults", {})["eviction_delay"] = CHAOS_EVICTION_DELAY
    # Pools cannot grow: the resource-scaling loop would otherwise add a node under a
    # Job the scenario leaves unschedulable on purpose, and the move would not happen.
    for region in data["regions"]:
        for pool in region.get("node_pools") or []:
            pool["max"] = pool["count"]
    path = directory / "regions.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def chaos_db() -> Iterator[str]:
    """A fresh MariaDB database for one test module (root, no password)."""
    if not mariadb_available():
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306 (.ci/run starts it)")
    with mariadb_database("meridian_chaos") as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def chaos_temporal(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(tmp_path_factory.mktemp("temporal") / "temporal.db")
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
def chaos_kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    state = tmp_path_factory.mktemp("kubesim")
    proc = start_kubesim(chaos_regions_file(state), state)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def engine_overrides() -> dict[str, Any]:
    """Settings a module changes for its engine (override the fixture in the module)."""
    return {}


@pytest_asyncio.fixture(scope="module")
async def chaos_engine(
    chaos_temporal: WorkflowEnvironment,
    chaos_kubesim: KubesimProcess,
    chaos_db: str,
    engine_overrides: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Engine]:
    """The whole engine in this process (central + unit workers + API over HTTP)."""
    state = Path(chaos_kubesim.state_dir)
    settings = engine_settings(
        database_url=chaos_db,
        temporal_address=chaos_temporal.client.service_client.config.target_host,
        kubeconfig=Path(chaos_kubesim.kubeconfig),
        regions_file=state / "regions.yaml",
        control_url=chaos_kubesim.control_url,
        state_dir=tmp_path_factory.mktemp("engine"),
        **engine_overrides,
    )
    engine = await Engine(settings, chaos_temporal.client).start()
    try:
        yield engine
    finally:
        await engine.stop()


@pytest_asyncio.fixture(scope="module")
async def control(chaos_kubesim: KubesimProcess) -> AsyncIterator[AsyncKubesimControl]:
    async with AsyncKubesimControl(chaos_kubesim.control_url) as ctl:
        yield ctl


@pytest.fixture(scope="module")
def clusters(chaos_kubesim: KubesimProcess) -> Iterator[Clusters]:
    c = Clusters(chaos_kubesim.kubeconfig, chaos_kubesim.regions)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def auditor(chaos_engine: Engine, clusters: Clusters) -> Auditor:
    return Auditor(
        f"http://127.0.0.1:{chaos_engine.settings.api_port}",
        chaos_engine.client,
        clusters,
        headers=dict(chaos_engine.http.headers),
        db_reader=chaos_engine.store,
    )


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def submit_all(engine: Engine, bodies: list[dict[str, Any]]) -> list[str]:
    """Submit concurrently (as many clients would); every one must be accepted."""
    responses = await asyncio.gather(*(engine.submit(b) for b in bodies))
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 201, (body.get("id"), response.text)
    return [str(r.json()["id"]) for r in responses]


async def wait_all(
    engine: Engine, task_ids: list[str], *statuses: str, timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    results = await asyncio.gather(
        *(engine.wait_status(t, *statuses, timeout=timeout) for t in task_ids)
    )
    return {t["id"]: t for t in results}
