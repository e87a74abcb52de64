"""A fresh world per scenario: its own Temporal dev server, kubesim, database and engine.

The control workflows have fixed ids (`meridian-region-control-<region>`) and the unit
workers poll fixed queues (`region.<name>`), so scenarios cannot share a Temporal server
without sharing state; a dev server starts in well under a second, so each gets its own.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from kubesim.process import KubesimProcess, start_kubesim
from meridian.settings import FailoverSettings, ScalingSettings
from meridian.tasks.contracts import SEARCH_ATTRIBUTES
from tests.integration.harness import Engine, engine_settings

HERE = Path(__file__).parent
REGIONS = HERE / "regions.yaml"
BIN = Path(sys.executable).parent
REGION = "aws-us-east-1"
OTHER = "azure-eastus"

# Short windows so a scenario takes seconds, not the production ten minutes.
FAST_SCALING = ScalingSettings(
    tick_seconds=1.0,
    high_water=0.8,
    low_water=0.4,
    scale_up_cooldown_seconds=3.0,
    scale_down_window_seconds=4.0,
    scale_down_cooldown_seconds=3.0,
)
# A pending pod must not be moved away before new nodes arrive (provisioning is 2 s).
FAILOVER = FailoverSettings(
    region_grace_seconds=4.0,
    health_interval_seconds=1.0,
    unschedulable_seconds=60.0,
    resident_heartbeat_timeout_seconds=3.0,
)


@dataclass
class World:
    engine: Engine
    kubesim: KubesimProcess
    control: httpx.AsyncClient

    async def pool(self, region: str = REGION, name: str = "general") -> dict[str, Any]:
        pools = (await self.control.get(f"/sim/regions/{region}/pools")).json()
        return dict(next(p for p in pools if p["name"] == name))

    async def decisions(self, region: str = REGION) -> list[dict[str, Any]]:
        answer = await self.engine.http.get(f"/v1/regions/{region}/scaling", params={"limit": 1000})
        answer.raise_for_status()
        return list(answer.json()["items"])

    async def events(self, task_id: str) -> list[dict[str, Any]]:
        answer = await self.engine.http.get(f"/v1/tasks/{task_id}/events")
        answer.raise_for_status()
        return list(answer.json()["items"])

    async def ran(self, task_id: str) -> bool:
        return any(e["status"] == "RUNNING" for e in await self.events(task_id))

    async def ready_nodes(self, count: int, region: str = REGION) -> bool:
        return int((await self.pool(region))["ready"]) == count

    async def kube(self, path: str, region: str = REGION) -> dict[str, Any]:
        """A GET on the region's Kubernetes API (kubesim serves plain HTTP)."""
        async with httpx.AsyncClient(base_url=self.kubesim.region_urls[region]) as api:
            answer = await api.get(path)
            answer.raise_for_status()
            return dict(answer.json())

    async def node_of(self, task_id: str, region: str = REGION) -> str | None:
        # The pods' task-id label is the task's key (its workflow id), not its id.
        task = await self.engine.http.get(f"/v1/tasks/{task_id}")
        task.raise_for_status()
        pods = await self.kube(
            # Task pods run in their business unit's namespace: look in all of them.
            f"/api/v1/pods?labelSelector=meridian.io/task-id={task.json()['workflow_id']}",
            region,
        )
        for pod in pods.get("items") or []:
            phase = (pod.get("status") or {}).get("phase")
            node = (pod.get("spec") or {}).get("nodeName")
            if node and phase in ("Pending", "Running"):
                return str(node)
        return None

    async def wait_for(self, what: str, probe: Any, timeout: float = 60.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        last: Any = None
        while asyncio.get_running_loop().time() < deadline:
            last = await probe()
            if last:
                return last
            await asyncio.sleep(0.3)
        raise AssertionError(f"{what}: not within {timeout}s (last: {last})")


def create_database() -> tuple[str, str]:
    name = f"meridian_sl_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    return name, f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"


def drop_database(name: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


async def start_temporal(state: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_database_filename=str(state / "temporal.db"),
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
    )


@asynccontextmanager
async def world(
    state: Path, *, regions: Path = REGIONS, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[World]:
    """Everything started, yielded, and stopped in reverse order whatever happens."""
    env = await start_temporal(state)
    sim = start_kubesim(regions, state / "kubesim")
    db_name = None
    if database_url is None:
        db_name, database_url = create_database()
    values: dict[str, Any] = {"scaling": FAST_SCALING, "failover": FAILOVER, **overrides}
    settings = engine_settings(
        database_url=database_url,
        temporal_address=env.client.service_client.config.target_host,
        kubeconfig=Path(sim.kubeconfig),
        regions_file=regions,
        control_url=sim.control_url,
        state_dir=state / "engine",
        **values,
    )
    engine = Engine(settings, env.client)
    control = httpx.AsyncClient(base_url=sim.control_url, timeout=10.0)
    try:
        await engine.start()
        yield World(engine=engine, kubesim=sim, control=control)
    finally:
        await control.aclose()
        await engine.stop()
        sim.stop()
        await env.shutdown()
        if db_name is not None:
            drop_database(db_name)
