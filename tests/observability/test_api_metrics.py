"""The API's request metrics: labelled by route template, never by the raw path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from api.deps import AppState
from api.metrics import RequestMetrics
from api.routes import health
from api.routes import tasks as task_routes
from meridian.observability import metrics as m
from meridian.regions.view import RegionView
from meridian.store import Store
from tests.api.stage import FakeClient, task_service
from tests.integration.harness import task_body
from tests.observability.support import sample, series
from tests.support import install_auth, token_headers


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(f"sqlite:///{tmp_path / 'meridian.db'}")
    store.migrate()
    temporal = FakeClient()
    service = task_service(store, temporal)
    app = FastAPI()
    app.include_router(health.router)
    app.include_router(task_routes.router)
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
    app.add_middleware(RequestMetrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers=token_headers(tmp_path, "ads")
    ) as client:
        yield client
    store.close()


ROUTE = "/v1/tasks/{task_id}"


async def test_many_task_ids_make_one_series_by_route_template(api: httpx.AsyncClient) -> None:
    before = sample(m.API, "meridian_api_requests_total", route=ROUTE, method="GET", status="404")
    for n in range(25):
        assert (await api.get(f"/v1/tasks/no-such-task-{n}")).status_code == 404
    after = sample(m.API, "meridian_api_requests_total", route=ROUTE, method="GET", status="404")
    assert after - before == 25
    routes = {s["route"] for s in series(m.API, "meridian_api_requests_total")}
    assert not any("no-such-task" in route for route in routes), routes
    timed = sample(m.API, "meridian_api_request_duration_seconds_count", route=ROUTE, method="GET")
    assert timed >= 25


async def test_refusals_and_unknown_paths_are_counted_without_their_path(
    api: httpx.AsyncClient,
) -> None:
    def count(route: str, status: str) -> float:
        return sample(
            m.API, "meridian_api_requests_total", route=route, method="GET", status=status
        )

    unauthorised, unmatched = count(ROUTE, "401"), count("unmatched", "404")
    response = await api.get("/v1/tasks/abc", headers={"Authorization": ""})
    assert response.status_code == 401
    assert (await api.get("/no/such/page/42")).status_code == 404
    assert count(ROUTE, "401") == unauthorised + 1
    assert count("unmatched", "404") == unmatched + 1


async def test_submit_is_timed_and_counted_by_status(api: httpx.AsyncClient) -> None:
    submits = sample(m.API, "meridian_task_submit_duration_seconds_count")
    created = sample(
        m.API, "meridian_api_requests_total", route="/v1/tasks", method="POST", status="201"
    )
    response = await api.post("/v1/tasks", json=task_body())
    assert response.status_code == 201, response.text
    assert sample(m.API, "meridian_task_submit_duration_seconds_count") == submits + 1
    assert (
        sample(m.API, "meridian_api_requests_total", route="/v1/tasks", method="POST", status="201")
        == created + 1
    )
