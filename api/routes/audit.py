"""/v1/audit: the audit log of mutating requests, for admins."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import ADMIN_ONLY, UNAUTHORIZED, AdminDep, authenticate
from api.deps import StateDep
from api.schemas import AuditEntryPublic, AuditList

router = APIRouter(
    prefix="/v1/audit",
    tags=["audit"],
    dependencies=[Depends(authenticate)],
    responses=UNAUTHORIZED,
)


@router.get("", response_model=AuditList, responses={403: {"description": ADMIN_ONLY}})
async def list_audit(
    state: StateDep,
    _admin: AdminDep,
    business_unit: Annotated[str | None, Query(max_length=63)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    task: Annotated[str | None, Query(max_length=255, description="a task id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditList:
    """Newest first. `business_unit` is the caller's unit, `task` the task acted on."""
    try:
        page = await asyncio.to_thread(
            state.store.list_audit,
            business_unit=business_unit,
            action=action,
            target_kind="task" if task is not None else None,
            target=task,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}],
        ) from exc
    return AuditList(
        items=[AuditEntryPublic(**item.model_dump()) for item in page.items],
        next_cursor=page.next_cursor,
    )
