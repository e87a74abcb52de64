"""The REST API: assembles the routers; Temporal is connected in the background so the
API answers (and says it is not ready) while Temporal is still starting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api.deps import AppState
from api.routes import health, placement, regions, scaling, sweeps, tasks
from meridian.regions.catalog import catalog_for
from meridian.regions.config import load_regions
from meridian.regions.view import RegionView
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import TaskService
from meridian.temporal import connect

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.from_settings(settings)
        store.migrate()
        regions_file = load_regions(settings.regions_file)
        catalog = catalog_for(settings.catalog_files)
        view = RegionView(store, regions_file, settings.placement, catalog)
        state = AppState(
            settings=settings, store=store, regions=regions_file, catalog=catalog, view=view
        )
        app.state.meridian = state

        async def connect_temporal() -> None:
            client = await connect(settings, attempts=600, delay=0.5)
            state.client = client
            state.service = TaskService(store, client, settings, catalog)
            log.info("connected to Temporal at %s", settings.temporal_address)

        connecting = asyncio.create_task(connect_temporal())
        try:
            yield
        finally:
            connecting.cancel()
            store.close()

    app = FastAPI(
        title="Meridian",
        version="1",
        description="Multi-region, multi-cloud task scheduling engine.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(regions.router)
    app.include_router(scaling.router)  # /v1/regions/{name}, its scaling decisions and mode
    app.include_router(placement.router)
    app.include_router(sweeps.router)
    return app
