"""/v1/tasks: submit, start, modify, stop, get, list, events, placement."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import ServiceDep, StateDep, field_error
from api.schemas import (
    PlacementDecisionPublic,
    PlacementTable,
    TaskCreate,
    TaskEventList,
    TaskEventPublic,
    TaskList,
    TaskPublic,
)
from meridian.regions.catalog import UnknownRegionError
from meridian.store.errors import TaskConflictError
from meridian.tasks.service import TaskNotFound, TaskStateConflict, TemporalUnavailable
from meridian.tasks.spec import TaskKind, TaskPatch, TaskSpec, TaskStatus

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

NOT_FOUND = "task not found"
ID_CONFLICT = "a task with this id (or Idempotency-Key) exists with a different body"
TEMPORAL_DOWN = "Temporal is unavailable; the task is recorded, retry to start it"
NULL_FIELD = (
    "null is not accepted for a field: leave it out to keep the current value, or give "
    "the new one (null removes a key only inside env, annotations and labels)"
)


def check_spec(spec: TaskSpec, state: StateDep) -> None:
    """Checks that need the catalog and the deployment's regions (422 naming the field)."""
    try:
        state.catalog.require(spec.data_source.provider.value, spec.data_source.region)
    except UnknownRegionError as exc:
        field_error(["data_source", "region"], str(exc))
    known = set(state.regions.names)
    constraints = spec.placement
    if constraints.region is not None and constraints.region not in known:
        field_error(
            ["placement", "region"],
            f"unknown region {constraints.region!r}; known: {', '.join(sorted(known))}",
        )
    for i, name in enumerate(constraints.regions):
        if name not in known:
            field_error(
                ["placement", "regions", i],
                f"unknown region {name!r}; known: {', '.join(sorted(known))}",
            )
    providers = {p.value for p in constraints.providers} | {
        r.provider.value for r in state.regions.regions
    }
    for i, tier in enumerate(constraints.preferences):
        for j, name in enumerate(tier):
            if name not in known and name not in providers:
                field_error(
                    ["placement", "preferences", i, j],
                    f"{name!r} is neither a region nor a provider of this deployment",
                )


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail=NOT_FOUND)


def _body_errors(exc: ValidationError) -> RequestValidationError:
    """A model's ValidationError as the 422 FastAPI gives a bad body: loc under "body"."""
    return RequestValidationError(
        [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
    )


@router.post(
    "",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "the task already existed with this body"},
        409: {"description": ID_CONFLICT},
        422: {"description": "invalid field"},
    },
)
async def submit_task(
    body: TaskCreate,
    state: StateDep,
    service: ServiceDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> TaskPublic:
    spec = body.spec()
    check_spec(spec, state)
    try:
        task, created = await service.submit(
            spec, task_id=body.id, start=body.start, idempotency_key=idempotency_key
        )
    except TaskConflictError as exc:
        raise HTTPException(status_code=409, detail=ID_CONFLICT) from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail=TEMPORAL_DOWN) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return TaskPublic.of(task)


@router.get("", response_model=TaskList)
async def list_tasks(
    state: StateDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    region: str | None = None,
    business_unit: str | None = None,
    kind: TaskKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> TaskList:
    try:
        page = await asyncio.to_thread(
            state.store.list_tasks,
            status=status_,
            region=region,
            business_unit=business_unit,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}],
        ) from exc
    return TaskList(items=[TaskPublic.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/{task_id}", response_model=TaskPublic, responses={404: {"description": NOT_FOUND}})
async def get_task(task_id: str, state: StateDep) -> TaskPublic:
    # A read of the database alone: it answers while Temporal is still coming up.
    task = await asyncio.to_thread(state.store.get_task, task_id)
    if task is None:
        raise _not_found()
    return TaskPublic.of(task)


@router.post(
    "/{task_id}/start",
    response_model=TaskPublic,
    responses={404: {"description": NOT_FOUND}, 409: {"description": "not PENDING"}},
)
async def start_task(task_id: str, service: ServiceDep) -> TaskPublic:
    try:
        return TaskPublic.of(await service.start(task_id))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TaskStateConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail=TEMPORAL_DOWN) from exc


@router.post(
    "/{task_id}/stop", response_model=TaskPublic, responses={404: {"description": NOT_FOUND}}
)
async def stop_task(task_id: str, service: ServiceDep) -> TaskPublic:
    """Idempotent: deletes the Job and ends the task STOPPED."""
    try:
        return TaskPublic.of(await service.stop(task_id))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail="Temporal is unavailable; retry") from exc


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses={404: {"description": NOT_FOUND}, 409: {"description": "finished"}},
)
async def modify_task(task_id: str, patch: TaskPatch, service: ServiceDep) -> TaskPublic:
    """Merge a partial body into the task (a JSON merge patch, see TaskPatch): given fields
    are applied, objects and maps merge, a null map value removes the key, lists replace.
    A running task whose Job changed gets a new Job."""
    nulls = patch.null_fields()
    if nulls:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("body", *loc), "msg": NULL_FIELD, "input": None}
                for loc in nulls
            ]
        )
    try:
        return TaskPublic.of(await service.modify(task_id, patch))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TaskStateConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except ValidationError as exc:  # the merged spec is invalid: name the field
        raise _body_errors(exc) from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail="Temporal is unavailable; retry") from exc


@router.get(
    "/{task_id}/events", response_model=TaskEventList, responses={404: {"description": NOT_FOUND}}
)
async def task_events(task_id: str, state: StateDep) -> TaskEventList:
    if await asyncio.to_thread(state.store.get_task, task_id) is None:
        raise _not_found()
    events = await asyncio.to_thread(state.store.list_events, task_id)
    return TaskEventList(task_id=task_id, items=[TaskEventPublic.of(e) for e in events])


@router.get(
    "/{task_id}/placement",
    response_model=PlacementTable,
    responses={404: {"description": NOT_FOUND}},
)
async def task_placement(task_id: str, state: StateDep) -> PlacementTable:
    """The full table of the latest decision: every candidate's scores, every filter reason."""
    if await asyncio.to_thread(state.store.get_task, task_id) is None:
        raise _not_found()
    history = await asyncio.to_thread(state.store.list_placements, task_id)
    latest = history[-1].decision if history else {}
    return PlacementTable(
        task_id=task_id,
        chosen=latest.get("chosen"),
        reason=latest.get("reason"),
        candidates=list(latest.get("candidates") or []),
        filtered=list(latest.get("filtered") or []),
        history=[
            PlacementDecisionPublic(attempt=p.attempt, decided_at=p.decided_at, decision=p.decision)
            for p in history
        ],
    )
