"""GET /v1/regions and /v1/regions/{name} as a client sees them, from region state rows
as the region monitor and the control loop store them (written raw here, so the rows
are the ones older versions left in the database too)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.routes import regions as region_routes
from api.routes import scaling as scaling_routes
from meridian.regions.config import load_regions
from meridian.store import Store
from meridian.store.schema import RegionEventRow, RegionStateRow
from tests.conftest import REPO
from tests.support import install_auth, token_headers

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DETAILS = {
    "api_error_rate": 0.0912,
    "worker_polling": True,
    "last_probe_at": "2026-01-01T00:00:04+00:00",
    "api_latency_ms": 12.5,
    "load": {
        "nodes_total": 3,
        "nodes_ready": 3,
        "nodes_cordoned": 0,
        "cpu_allocatable_millis": 24000,
        "cpu_requested_millis": 6000,
        "memory_allocatable_bytes": 96 << 30,
        "memory_requested_bytes": 48 << 30,
        "largest_free_cpu_millis": 6000,
        "largest_free_memory_bytes": 16 << 30,
        "pending_pods": 2,
    },
    "bad_since": None,
    "draining": True,
    "draining_reason": "water level 0.95 at or above 0.80 and every pool is at its max",
    "scaling": {
        "mode": "advise",
        "water_level": 0.5,
        "at": "2026-01-01T00:00:03+00:00",
        "pools": [
            {
                "name": "general",
                "min": 1,
                "desired": 3,
                "max": 8,
                "current": 3,
                "ready": 3,
                "autoscaler_enabled": False,
                "node_cpu": 8000,
                "node_mem": 32 << 30,
            }
        ],
        "pool_errors": {},
        "pending_pods": 1,
        "waiting_tasks": 4,
    },
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}")
    store.migrate()

    def rows(session: Session) -> None:
        session.add(
            RegionStateRow(
                name="aws-us-east-1",
                state="degraded",
                reason="recent API error rate 9%",
                since=T0,
                updated_at=T0 + timedelta(seconds=4),
                details=DETAILS,
            )
        )
        # Assessed, but no probe ever answered: no load.
        session.add(
            RegionStateRow(
                name="azure-eastus",
                state="down",
                reason="unit worker not polling its task queue (refused) for 12s",
                since=T0,
                updated_at=T0,
                details={
                    "api_error_rate": 1.0,
                    "worker_polling": False,
                    "last_probe_at": "2026-01-01T00:00:00+00:00",
                    "bad_since": "2025-12-31T23:59:48+00:00",
                },
            )
        )
        session.add(
            RegionEventRow(
                name="aws-us-east-1",
                state="degraded",
                previous_state="up",
                reason="recent API error rate 9%",
                at=T0,
                details=DETAILS,
            )
        )

    store._db.run_write(rows)
    store.set_scaling_mode("aws-us-east-1", "advise")
    store.upsert_network_path("aws-us-east-1", "aws:us-east-1", 1.23456, 0.012345, 7, T0)
    app = FastAPI()
    app.include_router(region_routes.router)
    app.include_router(scaling_routes.router)
    regions = load_regions(REPO / "infra" / "regions" / "dev.yaml")
    app.state.meridian = SimpleNamespace(store=store, regions=regions, client=None)
    transport = httpx.ASGITransport(app=app)
    install_auth(app, tmp_path)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=token_headers(tmp_path, "ads")
    ) as client:
        yield client
    store.close()


AWS: dict[str, Any] = {
    "name": "aws-us-east-1",
    "provider": "aws",
    "location": "us-east-1",
    "role": "unit",
    "state": "degraded",
    "reason": "recent API error rate 9%",
    "since": "2026-01-01T00:00:00Z",
    "water_level": 0.5,
    "nodes_ready": 3,
    "nodes_total": 3,
    "cpu_free_millis": 18000,
    "memory_free_bytes": 48 << 30,
    "pending_pods": 2,
    "api_error_rate": 0.0912,
    "api_latency_ms": 12.5,
    "worker_polling": True,
    "pollers": None,
    "task_queue": "region.aws-us-east-1",
    "network": [
        {
            "target": "aws:us-east-1",
            "rtt_ms": 1.235,
            "loss": 0.0123,
            "samples": 7,
            "measured_at": "2026-01-01T00:00:00Z",
        }
    ],
    # Declared in dev.yaml; the stored probe predates serverless usage: not seen yet.
    "serverless": {
        "kind": "fargate",
        "currency": "USD",
        "quota_pods": 200,
        "quota_cpu": "200",
        "quota_memory": "800Gi",
        "seen": False,
        "ready": None,
        "pods": None,
        "cpu": None,
        "memory": None,
        "waiting_pods": None,
        "cost": None,
    },
}
AZURE: dict[str, Any] = {
    "name": "azure-eastus",
    "provider": "azure",
    "location": "eastus",
    "role": "unit",
    "state": "down",
    "reason": "unit worker not polling its task queue (refused) for 12s",
    "since": "2026-01-01T00:00:00Z",
    "water_level": None,
    "nodes_ready": None,
    "nodes_total": None,
    "cpu_free_millis": None,
    "memory_free_bytes": None,
    "pending_pods": None,
    "api_error_rate": 1.0,
    "api_latency_ms": None,
    "worker_polling": False,
    "pollers": None,
    "task_queue": "region.azure-eastus",
    "network": [],
    "serverless": None,  # declares none
}
NEVER_REPORTED: dict[str, Any] = {
    "name": "gcp-europe-west1",
    "provider": "gcp",
    "location": "europe-west1",
    "role": "unit",
    "state": "unknown",
    "reason": "no health report yet",
    "since": None,
    "water_level": None,
    "nodes_ready": None,
    "nodes_total": None,
    "cpu_free_millis": None,
    "memory_free_bytes": None,
    "pending_pods": None,
    "api_error_rate": None,
    "api_latency_ms": None,
    "worker_polling": None,
    "pollers": None,
    "task_queue": "region.gcp-europe-west1",
    "network": [],
    "serverless": None,
}


async def test_region_list(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/regions")
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert items["aws-us-east-1"] == AWS
    assert items["azure-eastus"] == AZURE
    assert items["gcp-europe-west1"] == NEVER_REPORTED


async def test_one_region_with_its_control_loop_view(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/regions/aws-us-east-1")
    assert response.status_code == 200, response.text
    assert response.json() == {
        **AWS,
        "scaling_mode": "advise",
        "draining": True,
        "draining_reason": DETAILS["draining_reason"],
        # No burst advisory: the region is in advise mode, and the loop chose none.
        "burst_advised": False,
        "burst_reason": None,
        "burst_since": None,
        "scaling_observed_at": "2026-01-01T00:00:03Z",
        "pools": [
            {
                "name": "general",
                "min": 1,
                "desired": 3,
                "max": 8,
                "current": 3,
                "ready": 3,
                "autoscaler_enabled": False,
                "driver": "kubesim",
            }
        ],
        "pending_demand": {"pending_pods": 1, "waiting_tasks": 4},
        "water_level_history": [],
        "events": [
            {
                "at": "2026-01-01T00:00:00Z",
                "state": "degraded",
                "previous_state": "up",
                "reason": "recent API error rate 9%",
            }
        ],
    }


async def test_a_region_the_control_loop_has_not_seen(api: httpx.AsyncClient) -> None:
    detail = (await api.get("/v1/regions/gcp-europe-west1")).json()
    assert detail["scaling_mode"] == "auto" and detail["draining"] is False
    assert detail["scaling_observed_at"] is None
    assert detail["pending_demand"] == {"pending_pods": 0, "waiting_tasks": 0}
    assert [p["desired"] for p in detail["pools"]] == [3]  # from the regions file
