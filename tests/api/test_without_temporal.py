"""The API before Temporal answers: reads come from the database, writes say 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from api.routes import tasks as task_routes
from meridian.store import Store
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.support import install_auth, token_headers


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}")
    store.migrate()
    spec = TaskSpec.model_validate(
        {
            "name": "n",
            "business_unit": "ads",
            "kind": "batch",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "busybox"},
        }
    )
    store.create_task("early-1", spec, status=TaskStatus.SCHEDULING)
    app = FastAPI()
    app.include_router(task_routes.router)
    app.state.meridian = SimpleNamespace(store=store, service=None, client=None)
    install_auth(app, tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=token_headers(tmp_path, "ads")
    ) as client:
        yield client


async def test_get_answers_from_the_database(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/tasks/early-1")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SCHEDULING"
    assert (await api.get("/v1/tasks/nobody")).status_code == 404


async def test_stop_needs_temporal_and_says_so(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/tasks/early-1/stop")
    assert response.status_code == 503
    assert "Temporal" in response.json()["detail"]
