"""Integration fixtures: kubesim, a fresh MariaDB database, and the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from kubesim.process import KubesimProcess, start_kubesim
from tests.conftest import REPO
from tests.integration.harness import Engine, engine_settings
from tests.support import mariadb_available, mariadb_database

DEV_REGIONS = REPO / "infra" / "regions" / "dev.yaml"


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A throw-away database on the MariaDB at 127.0.0.1:3306 (root, no password)."""
    if not mariadb_available():
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306 (.ci/run starts it)")
    with mariadb_database("meridian_it") as url:
        yield url


@pytest.fixture(scope="session")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    state = tmp_path_factory.mktemp("kubesim")
    proc = start_kubesim(DEV_REGIONS, state)
    try:
        yield proc
    finally:
        proc.stop()


@pytest_asyncio.fixture(scope="session")
async def engine(
    dev_env: WorkflowEnvironment,
    kubesim: KubesimProcess,
    mariadb_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Engine]:
    settings = engine_settings(
        database_url=mariadb_url,
        temporal_address=dev_env.client.service_client.config.target_host,
        kubeconfig=Path(kubesim.kubeconfig),
        regions_file=DEV_REGIONS,
        control_url=kubesim.control_url,
        state_dir=tmp_path_factory.mktemp("engine"),
    )
    engine = await Engine(settings, dev_env.client).start()
    try:
        yield engine
    finally:
        await engine.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
