"""Dependencies of the route handlers, as `Annotated[..., Depends()]` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from temporalio.client import Client

from meridian.regions.catalog import Catalog
from meridian.regions.config import RegionsFile
from meridian.regions.view import RegionView
from meridian.settings import Settings
from meridian.store import Store
from meridian.tasks.service import SpecInvalid, TaskService


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


def invalid_body(exc: SpecInvalid) -> RequestValidationError:
    """The service's verdict on a body as the 422 FastAPI gives a body that does not fit
    the model: the same `detail` list, each error's loc under "body"."""
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors])


# The body limit (api.main.BodyLimit) answers before any route, for every route.
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"description": "the body is over MERIDIAN_API_MAX_BODY_BYTES (1 MiB by default)"}
}
# FastAPI answers 400 to a JSON body it cannot read as text at all (not UTF-8); text
# that is not valid JSON is a 422 like any other invalid body.
UNREADABLE: dict[int | str, dict[str, Any]] = {400: {"description": "the body is not UTF-8 text"}}

# What reaches Temporal answers 503 until the API has connected (get_service), and while
# Temporal does not answer.
NO_TEMPORAL: dict[int | str, dict[str, Any]] = {
    503: {"description": "Temporal is not reachable (yet); retry"}
}
