"""Quotas, checked and taken in the transaction that creates or starts a task.

Atomic per business unit across API replicas: the admission locks the unit's row in
`unit_admissions` (SELECT ... FOR UPDATE on MySQL/MariaDB; on SQLite every write
transaction begins IMMEDIATE and so runs alone), then counts the unit's active tasks,
takes a token from the unit's bucket (kept in that row) and inserts the task before it
commits. Two replicas admitting for one unit therefore take turns, and the second counts
the first one's task. A unit without limits (the default) skips all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from meridian.store.db import Database
from meridian.store.records import CreateOutcome, Transition
from meridian.store.schema import TaskRow, UnitAdmissionRow
from meridian.store.types import ensure_aware
from meridian.tasks.spec import ACTIVE_STATUSES, Resources, TaskSpec, TaskStatus
from meridian.tenancy.bucket import Bucket, take
from meridian.tenancy.quotas import (
    QuotaExceeded,
    QuotaSettings,
    TaskTooLarge,
    UnitQuota,
    Usage,
    check_active,
    too_large_errors,
)

ACTIVE_VALUES = sorted(s.value for s in ACTIVE_STATUSES)
DEFAULT_RESOURCES = Resources()


class QuotaStore:
    _db: Database
    _clock: Callable[[], datetime]

    # TaskStore's, which takes the `admit` hook (Store inherits both).
    def create_task(
        self,
        task_id: str,
        spec: TaskSpec,
        *,
        status: TaskStatus,
        public_id: str | None = None,
        idempotency_key: str | None = None,
        admit: Callable[[Session], None] | None = None,
    ) -> CreateOutcome:
        raise NotImplementedError

    def transition_from(
        self,
        expected: TaskStatus,
        t: Transition,
        *,
        admit: Callable[[Session], None] | None = None,
    ) -> bool:
        raise NotImplementedError

    def create_task_within_quota(
        self,
        task_id: str,
        spec: TaskSpec,
        *,
        status: TaskStatus,
        public_id: str | None = None,
        idempotency_key: str | None,
        quotas: QuotaSettings,
    ) -> CreateOutcome:
        """`create_task`, refusing a new task over its unit's quotas: TaskTooLarge when it
        alone exceeds them, QuotaExceeded when the unit is full or out of submission
        tokens. An existing task (same id or key) is returned as ever, never refused."""
        unit = spec.business_unit
        quota = quotas.for_unit(unit)
        task = Usage.of(spec.job.resources.cpu, spec.job.resources.memory)
        counts = status in ACTIVE_STATUSES and quota.limits_active

        def admit(session: Session) -> None:
            errors = too_large_errors(unit, quota, task)
            if errors:
                raise TaskTooLarge(errors)
            if quota.submissions_per_second is None and not counts:
                return
            admission = self._lock_unit(session, unit, quota)
            if _exists(session, unit, task_id, public_id or task_id, idempotency_key):
                # A twin request committed it while this one waited for the lock: the
                # insert now conflicts, and create_task's retry returns that task.
                return
            self._take_token(admission, unit, quota)
            if counts:
                used = _usage(session, unit, resources=quota.cpu or quota.memory)
                check_active(
                    unit, quota, used, task, retry_after_seconds=quotas.retry_after_seconds
                )

        return self.create_task(
            task_id,
            spec,
            status=status,
            public_id=public_id,
            idempotency_key=idempotency_key,
            admit=admit,
        )

    def start_within_quota(self, t: Transition, *, quotas: QuotaSettings) -> bool:
        """`transition_from(PENDING, t)`, refusing (QuotaExceeded, TaskTooLarge) when the
        task would not fit its unit's active-task quotas."""

        def admit(session: Session) -> None:
            row = session.get(TaskRow, t.task_id)  # locked by transition_from already
            if row is None or t.status not in ACTIVE_STATUSES:
                return
            unit = row.business_unit
            quota = quotas.for_unit(unit)
            if not quota.limits_active:
                return
            task = _demand(row.spec)
            errors = too_large_errors(unit, quota, task)
            if errors:
                raise TaskTooLarge(errors)
            self._lock_unit(session, unit, quota)
            used = _usage(session, unit, resources=quota.cpu or quota.memory)
            check_active(unit, quota, used, task, retry_after_seconds=quotas.retry_after_seconds)

        return self.transition_from(TaskStatus.PENDING, t, admit=admit)

    def usage(self, business_unit: str) -> Usage:
        """The unit's active tasks and what they request, as the quotas count them."""
        with self._db.read() as session:
            return _usage(session, business_unit, resources=True)

    def _lock_unit(self, session: Session, unit: str, quota: UnitQuota) -> UnitAdmissionRow:
        row = session.get(UnitAdmissionRow, unit, with_for_update=True)
        if row is None:
            # The unit's first admission. A racing first insert fails at the flush with
            # an IntegrityError, and run_write runs the whole admission again.
            row = UnitAdmissionRow(
                business_unit=unit,
                tokens=float(quota.burst),
                refilled_at=ensure_aware(self._clock()),
            )
            session.add(row)
            session.flush()
        return row

    def _take_token(self, row: UnitAdmissionRow, unit: str, quota: UnitQuota) -> None:
        rate = quota.submissions_per_second
        if rate is None:
            return
        taken = take(
            Bucket(row.tokens, row.refilled_at),
            ensure_aware(self._clock()),
            rate=rate,
            burst=quota.burst,
        )
        if not taken.allowed:
            raise QuotaExceeded(
                unit,
                "submissions_per_second",
                f"submissions arrive faster than the quota submissions_per_second "
                f"{rate:g} (burst {quota.burst})",
                taken.retry_after_seconds,
            )
        row.tokens = taken.bucket.tokens
        row.refilled_at = taken.bucket.refilled_at


def _exists(
    session: Session, unit: str, task_id: str, public_id: str, idempotency_key: str | None
) -> bool:
    in_unit = TaskRow.public_id == public_id
    if idempotency_key is not None:
        in_unit = or_(in_unit, TaskRow.idempotency_key == idempotency_key)
    match = or_(TaskRow.id == task_id, and_(TaskRow.business_unit == unit, in_unit))
    return session.scalar(select(TaskRow.id).where(match).limit(1)) is not None


def _usage(session: Session, unit: str, *, resources: object) -> Usage:
    """Count the unit's active tasks; with `resources`, also sum what they request (read
    from each spec: bounded by max_active_tasks where that is set)."""
    active = (TaskRow.business_unit == unit, TaskRow.status.in_(ACTIVE_VALUES))
    if not resources:
        count = session.scalar(select(func.count()).select_from(TaskRow).where(*active))
        return Usage(tasks=int(count or 0))
    total = Usage()
    for spec in session.scalars(select(TaskRow.spec).where(*active)):
        total = total + _demand(spec)
    return total


def _demand(spec: dict[str, Any]) -> Usage:
    resources = (spec.get("job") or {}).get("resources") or {}
    return Usage.of(
        str(resources.get("cpu", DEFAULT_RESOURCES.cpu)),
        str(resources.get("memory", DEFAULT_RESOURCES.memory)),
    )
