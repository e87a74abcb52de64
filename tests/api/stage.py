"""The real task and placement routes over a real TaskService (SQLite, the shipped
catalog, the dev regions), with a stand-in Temporal client that records what it is asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from fastapi import FastAPI
from temporalio.client import Client

from api.audit import install_audit
from api.deps import AppState
from api.quotas import install_quota_errors
from api.routes import audit, placement, regions, scaling, sweeps, tasks
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.view import RegionView
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import TaskService
from tests.conftest import REPO
from tests.support import install_auth, token_headers

DEV_REGIONS = REPO / "infra" / "regions" / "dev.yaml"


class FakeHandle:
    def __init__(self, client: FakeClient, workflow_id: str) -> None:
        self.client = client
        self.workflow_id = workflow_id

    async def signal(self, name: str, arg: Any) -> None:
        self.client.signals.append((self.workflow_id, name))

    async def result(self) -> None:
        return None


class _NoTaskQueues:
    async def describe_task_queue(self, request: Any) -> Any:
        raise RuntimeError("no Temporal here: pollers unknown")


class FakeClient:
    """Records the workflows started and the signals sent, as Temporal would receive them."""

    namespace = "default"
    workflow_service = _NoTaskQueues()

    def __init__(self) -> None:
        self.started: list[str] = []
        self.signals: list[tuple[str, str]] = []

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **_: Any) -> None:
        self.started.append(id)

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


def task_service(store: Store, temporal: FakeClient) -> TaskService:
    settings = Settings(regions_file=DEV_REGIONS)
    regions = load_regions(DEV_REGIONS)
    return TaskService(store, cast(Client, temporal), settings, Catalog.default(), regions)


@dataclass
class Stage:
    http: httpx.AsyncClient
    service: TaskService
    store: Store
    temporal: FakeClient


@asynccontextmanager
async def staged(tmp_path: Path, business_unit: str = "admin") -> AsyncIterator[Stage]:
    """Calls go out as `business_unit` (an admin by default)."""
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}")
    store.migrate()
    temporal = FakeClient()
    service = task_service(store, temporal)
    app = FastAPI()
    for routes in (tasks, placement, regions, scaling, sweeps, audit):
        app.include_router(routes.router)
    install_audit(app)
    install_quota_errors(app)
    app.state.meridian = AppState(
        settings=service.settings,
        store=store,
        regions=service.regions,
        catalog=service.catalog,
        view=RegionView(store, service.regions, service.settings.placement, service.catalog),
        client=cast(Client, temporal),
        service=service,
    )
    install_auth(app, tmp_path)
    transport = httpx.ASGITransport(app=app)
    headers = token_headers(tmp_path, business_unit)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as http:
            yield Stage(http=http, service=service, store=store, temporal=temporal)
    finally:
        store.close()
