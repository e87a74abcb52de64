"""What a caller may see and touch: its own business unit's tasks, or all of them as
admin. Another unit's task answers exactly like a task that does not exist (404), so
its existence is not revealed.

Task ids are scoped per business unit: a path's id is looked up in the caller's unit.
An admin names the unit with `?business_unit=`, or gives the task's workflow id (unique
across units); a bare id that several units use is a 409 saying which ones."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from pydantic import ValidationError

from api.schemas import TaskCreate
from meridian.auth.tokens import Principal
from meridian.store import Store
from meridian.store.records import TaskRecord
from meridian.tasks.spec import TaskSpec

NOT_FOUND = "task not found"


def may_see(principal: Principal, business_unit: str) -> bool:
    return principal.is_admin or principal.business_unit == business_unit


async def visible_task(
    store: Store, principal: Principal, task_id: str, business_unit: str | None = None
) -> TaskRecord:
    """The task `task_id` names for this caller: its public id within the caller's unit
    (an admin's: `business_unit`, or any unit), or failing that, its workflow id."""
    if not principal.is_admin:
        own = principal.business_unit
        if own is None or business_unit not in (None, own):
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        business_unit = own
    found = await asyncio.to_thread(store.find_tasks, task_id, business_unit=business_unit)
    tasks = [task for task in found if may_see(principal, task.business_unit)]
    if not tasks:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if len(tasks) > 1:
        raise HTTPException(status_code=409, detail=ambiguous(task_id, tasks))
    return tasks[0]


def ambiguous(task_id: str, tasks: list[TaskRecord]) -> str:
    units = ", ".join(sorted(task.business_unit for task in tasks))
    return (
        f"task id {task_id!r} is used by several business units ({units}): add "
        f"?business_unit=<unit>, or give the task's workflow id (e.g. {tasks[0].id!r})"
    )


def list_scope(principal: Principal, requested: str | None) -> tuple[str | None, bool]:
    """The business-unit filter a list runs with, and whether it can match anything: a
    caller asking for another unit's tasks gets an empty page, not an error."""
    if principal.is_admin:
        return requested, True
    own = principal.business_unit
    return own, requested is None or requested == own


def owned_spec(body: TaskCreate, principal: Principal) -> TaskSpec:
    """The body's spec, in the caller's business unit: omitted means the token's, another
    unit's is 403 (admin may name any)."""
    requested = body.business_unit
    if requested is not None and not may_see(principal, requested):
        raise HTTPException(
            status_code=403,
            detail=f"business_unit {requested!r} is not yours (your token's is "
            f"{principal.business_unit!r})",
        )
    unit = requested or principal.business_unit
    if unit is None:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["body", "business_unit"],
                    "msg": "business_unit is required (this token names none)",
                    "type": "missing",
                }
            ],
        )
    try:
        return body.spec(business_unit=unit)
    except ValidationError as exc:
        raise HTTPException(
            status_code=422,
            detail=[
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False)
            ],
        ) from exc
