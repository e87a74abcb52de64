"""/v1/tasks: submit, start, modify, stop, get, list, events, placement."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from api.auth import UNAUTHORIZED, PrincipalDep, authenticate
from api.deps import NO_TEMPORAL, TOO_LARGE, UNREADABLE, ServiceDep, StateDep, invalid_body
from api.quotas import TOO_MANY
from api.schemas import (
    PlacementDecisionPublic,
    PlacementTable,
    TaskCreate,
    TaskEventList,
    TaskEventPublic,
    TaskList,
    TaskPublic,
)
from api.tenancy import NOT_FOUND, list_scope, owned_spec, visible_task
from meridian.observability.metrics import TASK_SUBMIT_DURATION
from meridian.store.errors import TaskConflictError
from meridian.tasks.service import (
    SpecInvalid,
    TaskNotFound,
    TaskStateConflict,
    TemporalUnavailable,
)
from meridian.tasks.spec import TaskKind, TaskPatch, TaskStatus

router = APIRouter(
    prefix="/v1/tasks",
    tags=["tasks"],
    dependencies=[Depends(authenticate)],
    responses=UNAUTHORIZED,
)
ID_CONFLICT = "a task with this id (or Idempotency-Key) exists with a different body"
TEMPORAL_DOWN = "Temporal is unavailable; the task is recorded, retry to start it"


# An admin's way to name whose task a path's id is (see api/tenancy.py).
UnitQuery = Annotated[
    str | None,
    Query(description="admin only: the business unit whose task the id is (ids are per unit)"),
]
AMBIGUOUS: dict[int | str, dict[str, Any]] = {
    409: {"description": "admin: the id is used by several units; name one"}
}


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail=NOT_FOUND)


@router.post(
    "",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "the task already existed with this body"},
        403: {"description": "business_unit is another unit's"},
        409: {"description": ID_CONFLICT},
        422: {"description": "invalid field"},
        **TOO_LARGE,
        **UNREADABLE,
        **TOO_MANY,
        **NO_TEMPORAL,
    },
)
async def submit_task(
    body: TaskCreate,
    service: ServiceDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> TaskPublic:
    try:
        with TASK_SUBMIT_DURATION.time():
            task, created = await service.submit(
                owned_spec(body, principal),
                task_id=body.id,
                start=body.start,
                idempotency_key=idempotency_key,
            )
    except SpecInvalid as exc:
        raise invalid_body(exc) from exc
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
    principal: PrincipalDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    region: str | None = None,
    business_unit: str | None = None,
    kind: TaskKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> TaskList:
    business_unit, can_match = list_scope(principal, business_unit)
    if not can_match:
        return TaskList(items=[], next_cursor=None)
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


@router.get(
    "/{task_id}",
    response_model=TaskPublic,
    responses={404: {"description": NOT_FOUND}, **AMBIGUOUS},
)
async def get_task(
    task_id: str, state: StateDep, principal: PrincipalDep, business_unit: UnitQuery = None
) -> TaskPublic:
    """`task_id` is the id within the caller's business unit, or the task's workflow id."""
    # A read of the database alone: it answers while Temporal is still coming up.
    return TaskPublic.of(await visible_task(state.store, principal, task_id, business_unit))


@router.post(
    "/{task_id}/start",
    response_model=TaskPublic,
    responses={
        404: {"description": NOT_FOUND},
        409: {"description": "not PENDING, or (admin) the id is used by several units"},
        **TOO_MANY,
        **NO_TEMPORAL,
    },
)
async def start_task(
    task_id: str,
    service: ServiceDep,
    state: StateDep,
    principal: PrincipalDep,
    business_unit: UnitQuery = None,
) -> TaskPublic:
    task = await visible_task(state.store, principal, task_id, business_unit)
    try:
        return TaskPublic.of(await service.start(task.id))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TaskStateConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail=TEMPORAL_DOWN) from exc


class StopBody(BaseModel):
    """Optional: why, as the task's STOPPED event will say (default "stopped by user")."""

    reason: str | None = Field(None, min_length=1, max_length=1000)


@router.post(
    "/{task_id}/stop",
    response_model=TaskPublic,
    responses={
        404: {"description": NOT_FOUND},
        **AMBIGUOUS,
        **TOO_LARGE,
        **UNREADABLE,
        **NO_TEMPORAL,
    },
)
async def stop_task(
    task_id: str,
    service: ServiceDep,
    state: StateDep,
    principal: PrincipalDep,
    body: Annotated[StopBody | None, Body()] = None,
    business_unit: UnitQuery = None,
) -> TaskPublic:
    """Idempotent: deletes the Job and ends the task STOPPED."""
    task = await visible_task(state.store, principal, task_id, business_unit)
    reason = {"reason": body.reason} if body is not None and body.reason else {}
    try:
        return TaskPublic.of(await service.stop(task.id, **reason))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail="Temporal is unavailable; retry") from exc


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses={
        404: {"description": NOT_FOUND},
        409: {"description": "finished, or (admin) the id is used by several units"},
        **TOO_LARGE,
        **UNREADABLE,
        **NO_TEMPORAL,
    },
)
async def modify_task(
    task_id: str,
    patch: TaskPatch,
    service: ServiceDep,
    state: StateDep,
    principal: PrincipalDep,
    business_unit: UnitQuery = None,
) -> TaskPublic:
    """Merge a partial body into the task (a JSON merge patch, see TaskPatch): given fields
    are applied, objects and maps merge, a null map value removes the key, lists replace.
    A running task whose Job changed gets a new Job."""
    task = await visible_task(state.store, principal, task_id, business_unit)
    try:
        return TaskPublic.of(await service.modify(task.id, patch))
    except TaskNotFound as exc:
        raise _not_found() from exc
    except TaskStateConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except SpecInvalid as exc:  # a null field, or the merged spec is invalid: name it
        raise invalid_body(exc) from exc
    except TemporalUnavailable as exc:
        raise HTTPException(status_code=503, detail="Temporal is unavailable; retry") from exc


@router.get(
    "/{task_id}/events",
    response_model=TaskEventList,
    responses={404: {"description": NOT_FOUND}, **AMBIGUOUS},
)
async def task_events(
    task_id: str, state: StateDep, principal: PrincipalDep, business_unit: UnitQuery = None
) -> TaskEventList:
    task = await visible_task(state.store, principal, task_id, business_unit)
    events = await asyncio.to_thread(state.store.list_events, task.id)
    return TaskEventList(
        task_id=task.public_id,
        workflow_id=task.id,
        items=[TaskEventPublic.of(e) for e in events],
    )


@router.get(
    "/{task_id}/placement",
    response_model=PlacementTable,
    responses={404: {"description": NOT_FOUND}, **AMBIGUOUS},
)
async def task_placement(
    task_id: str, state: StateDep, principal: PrincipalDep, business_unit: UnitQuery = None
) -> PlacementTable:
    """The full table of the latest decision: every candidate's scores, every filter reason."""
    task = await visible_task(state.store, principal, task_id, business_unit)
    history = await asyncio.to_thread(state.store.list_placements, task.id)
    latest = history[-1].decision if history else {}
    return PlacementTable(
        task_id=task.public_id,
        workflow_id=task.id,
        chosen=latest.get("chosen"),
        reason=latest.get("reason"),
        candidates=list(latest.get("candidates") or []),
        filtered=list(latest.get("filtered") or []),
        history=[
            PlacementDecisionPublic(attempt=p.attempt, decided_at=p.decided_at, decision=p.decision)
            for p in history
        ],
    )
