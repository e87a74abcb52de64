"""The audit log: one row per mutating API request, written before the request is carried
out (so that nothing happens unrecorded) and completed with its outcome afterwards."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from meridian.store.db import Database
from meridian.store.schema import AuditRow
from meridian.store.types import ensure_aware

MAX_PAGE_SIZE = 1000
INVALID_CURSOR = "invalid cursor"
ANONYMOUS = "anonymous"


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    at: AwareDatetime
    subject: str
    business_unit: str | None
    action: str
    method: str
    target_kind: str | None
    target: str | None
    outcome: int | None


class AuditPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[AuditRecord]
    next_cursor: str | None


def _cut(value: str | None, size: int) -> str | None:
    # A long token subject or path must not make the audit write (and so the request) fail.
    return None if value is None else value[:size]


class AuditStore:
    _db: Database
    _clock: Callable[[], datetime]

    def record_audit(
        self,
        *,
        subject: str | None,
        business_unit: str | None,
        action: str,
        method: str,
        target_kind: str | None,
        target: str | None,
    ) -> int:
        """Write the request's row (outcome unknown yet); its id, for `finish_audit`."""
        row = AuditRow(
            at=ensure_aware(self._clock()),
            subject=_cut(subject or ANONYMOUS, 255),
            business_unit=_cut(business_unit, 63),
            action=_cut(action, 64),
            method=_cut(method, 8),
            target_kind=_cut(target_kind, 16),
            target=_cut(target, 255),
            outcome=None,
        )

        def work(session: Session) -> int:
            session.add(row)
            session.flush()
            return row.id

        return self._db.run_write(work)

    def finish_audit(
        self,
        entry_id: int,
        *,
        outcome: int,
        action: str | None = None,
        target_kind: str | None = None,
        target: str | None = None,
    ) -> None:
        """Record how the request ended (its HTTP status) and what it turned out to act
        on, where only routing or the response told (a generated task id)."""

        def work(session: Session) -> None:
            row = session.get(AuditRow, entry_id)
            if row is None:
                return
            row.outcome = outcome
            if action is not None:
                row.action = _cut(action, 64) or row.action
                row.target_kind = _cut(target_kind, 16)
                row.target = _cut(target, 255)

        self._db.run_write(work)

    def list_audit(
        self,
        *,
        business_unit: str | None = None,
        action: str | None = None,
        target_kind: str | None = None,
        target: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AuditPage:
        """Newest first, keyset-paged on the id (the order rows were written in)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        query = select(AuditRow)
        if business_unit is not None:
            query = query.where(AuditRow.business_unit == business_unit)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if target_kind is not None:
            query = query.where(AuditRow.target_kind == target_kind)
        if target is not None:
            query = query.where(AuditRow.target == target)
        if cursor is not None:
            query = query.where(AuditRow.id < decode_audit_cursor(cursor))
        query = query.order_by(AuditRow.id.desc()).limit(limit + 1)
        with self._db.read() as session:
            rows = list(session.scalars(query))
        items = [audit_record(row) for row in rows[:limit]]
        next_cursor = encode_audit_cursor(items[-1].id) if len(rows) > limit else None
        return AuditPage(items=items, next_cursor=next_cursor)


def audit_record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        subject=row.subject,
        business_unit=row.business_unit,
        action=row.action,
        method=row.method,
        target_kind=row.target_kind,
        target=row.target,
        outcome=row.outcome,
    )


def encode_audit_cursor(entry_id: int) -> str:
    raw = json.dumps({"audit": entry_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_audit_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise ValueError(INVALID_CURSOR) from exc
    entry_id = value.get("audit") if isinstance(value, dict) else None
    if not isinstance(entry_id, int) or isinstance(entry_id, bool) or entry_id < 1:
        raise ValueError(INVALID_CURSOR)
    return entry_id
