"""Dependencies of the route handlers, as `Annotated[..., Depends()]` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request
from temporalio.client import Client

from meridian.regions.catalog import Catalog
from meridian.regions.config import RegionsFile
from meridian.regions.view import RegionView
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import TaskService


@dataclass
class AppState:
    settings: Settings
    store: Store
    regions: RegionsFile
    catalog: Catalog
    view: RegionView
    client: Client | None = None
    service: TaskService | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.meridian
    return state


def get_service(state: Annotated[AppState, Depends(get_state)]) -> TaskService:
    if state.service is None:
        raise HTTPException(status_code=503, detail="Temporal is not reachable yet")
    return state.service


StateDep = Annotated[AppState, Depends(get_state)]
ServiceDep = Annotated[TaskService, Depends(get_service)]


def field_error(loc: list[str | int], message: str) -> NoReturn:
    """A 422 shaped like FastAPI's own validation errors, naming the field."""
    raise HTTPException(
        status_code=422,
        detail=[{"loc": ["body", *loc], "msg": message, "type": "value_error"}],
    )
