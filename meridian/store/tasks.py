"""Tasks and their transitions.

Every write is idempotent, because Temporal retries activities: creating a task again
with the same spec returns the existing row, and a transition is keyed by the
workflow-chosen `event_key`, so a retry finds its own earlier write and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from meridian.store.canonical import spec_hash
from meridian.store.db import Database
from meridian.store.errors import TaskConflictError, TaskNotFoundError
from meridian.store.paging import decode_cursor, encode_cursor
from meridian.store.records import (
    ActiveTaskRef,
    CreateOutcome,
    TaskEventRecord,
    TaskPage,
    TaskRecord,
    Transition,
)
from meridian.store.schema import TaskEventRow, TaskRow
from meridian.store.types import ensure_aware
from meridian.tasks.spec import ACTIVE_STATUSES, TaskKind, TaskSpec, TaskStatus

MAX_PAGE_SIZE = 1000


class TaskStore:
    _db: Database
    _clock: Callable[[], datetime]

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
        """Create the task, or return the one its unit already has with this id or key.

        `task_id` is the task key (meridian/tasks/keys.py), `public_id` the id the unit
        knows it by (`task_id` when not given). The same spec again gives
        `created=False`; a different spec raises `TaskConflictError`. An idempotency key
        that the unit already used maps to its task even when the ids differ (callers
        generate ids for keyed requests). Ids and keys of other units are never matched:
        a key that another unit's task already holds is a conflict, not that task.
        `admit` runs in the same transaction just before a new task is inserted, and may
        refuse it by raising (the quotas, meridian/store/quotas.py).
        """
        body = spec.model_dump(mode="json")
        digest = spec_hash(spec)
        unit = spec.business_unit
        public_id = public_id or task_id

        def work(session: Session) -> CreateOutcome:
            existing = _in_unit(session, unit, TaskRow.public_id == public_id)
            if existing is None and idempotency_key is not None:
                existing = _in_unit(session, unit, TaskRow.idempotency_key == idempotency_key)
            if existing is None:
                # Found by its key alone: a twin committed between the reads above (READ
                # COMMITTED), or the key is another unit's (or another id's) and is not
                # to be handed out.
                existing = session.get(TaskRow, task_id)
                if existing is not None and (existing.business_unit, existing.public_id) != (
                    unit,
                    public_id,
                ):
                    raise TaskConflictError(task_id, f"task key {task_id!r} is taken")
            if existing is not None:
                if existing.spec_hash != digest:
                    raise TaskConflictError(
                        existing.id,
                        f"task {existing.public_id!r} already exists with a different spec",
                    )
                return CreateOutcome(task=task_record(existing), created=False)
            if admit is not None:
                admit(session)
            now = ensure_aware(self._clock())
            row = TaskRow(
                id=task_id,
                public_id=public_id,
                name=spec.name,
                business_unit=unit,
                kind=spec.kind.value,
                status=status.value,
                spec=body,
                spec_hash=digest,
                idempotency_key=idempotency_key,
                attempt=0,
                last_seq=-1,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            # A racing insert of the same id/key fails here (or at commit); run_write
            # then runs `work` again, which finds the winner's row above.
            session.flush()
            return CreateOutcome(task=task_record(row), created=True)

        return self._db.run_write(work)

    def get_task(self, task_id: str) -> TaskRecord | None:
        """By task key (the workflow id)."""
        with self._db.read() as session:
            row = session.get(TaskRow, task_id)
            return task_record(row) if row is not None else None

    def get_unit_task(self, business_unit: str, public_id: str) -> TaskRecord | None:
        """By the id the unit knows it by."""
        with self._db.read() as session:
            row = _in_unit(session, business_unit, TaskRow.public_id == public_id)
            return task_record(row) if row is not None else None

    def find_tasks(self, ref: str, *, business_unit: str | None = None) -> list[TaskRecord]:
        """The tasks a caller may mean by `ref`: those with this public id (in
        `business_unit`, or in every unit), or failing any, the one with this key.
        Several only when units share the public id and no unit was named."""
        by_public = select(TaskRow).where(TaskRow.public_id == ref)
        by_key = select(TaskRow).where(TaskRow.id == ref)
        if business_unit is not None:
            by_public = by_public.where(TaskRow.business_unit == business_unit)
            by_key = by_key.where(TaskRow.business_unit == business_unit)
        with self._db.read() as session:
            rows = list(session.scalars(by_public.order_by(TaskRow.business_unit).limit(50)))
            if not rows:
                rows = list(session.scalars(by_key))
            return [task_record(row) for row in rows]

    def get_by_idempotency_key(self, business_unit: str, key: str) -> TaskRecord | None:
        with self._db.read() as session:
            row = _in_unit(session, business_unit, TaskRow.idempotency_key == key)
            return task_record(row) if row is not None else None

    def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        region: str | None = None,
        business_unit: str | None = None,
        kind: TaskKind | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        """Newest first, keyset-paged on (created_at, id)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        query = select(TaskRow)
        if status is not None:
            query = query.where(TaskRow.status == status.value)
        if region is not None:
            query = query.where(TaskRow.region == region)
        if business_unit is not None:
            query = query.where(TaskRow.business_unit == business_unit)
        if kind is not None:
            query = query.where(TaskRow.kind == kind.value)
        if cursor is not None:
            after_created, after_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    TaskRow.created_at < after_created,
                    and_(TaskRow.created_at == after_created, TaskRow.id < after_id),
                )
            )
        # One extra row tells whether another page exists without a COUNT.
        query = query.order_by(TaskRow.created_at.desc(), TaskRow.id.desc()).limit(limit + 1)
        with self._db.read() as session:
            rows = list(session.scalars(query))
        items = [task_record(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last.created_at, last.id)
        return TaskPage(items=items, next_cursor=next_cursor)

    def update_spec(self, task_id: str, spec: TaskSpec) -> TaskRecord:
        """Replace the spec (after a validated modify); a no-op when it is unchanged."""
        digest = spec_hash(spec)

        def work(session: Session) -> TaskRecord:
            row = session.get(TaskRow, task_id, with_for_update=True)
            if row is None:
                raise TaskNotFoundError(task_id)
            if row.spec_hash != digest:
                row.spec = spec.model_dump(mode="json")
                row.spec_hash = digest
                row.name = spec.name
                row.business_unit = spec.business_unit
                row.kind = spec.kind.value
                row.updated_at = max(row.updated_at, ensure_aware(self._clock()))
                session.flush()
            return task_record(row)

        return self._db.run_write(work)

    def record_transition(self, t: Transition) -> bool:
        """Store the event once; apply it to the task unless a newer seq was applied.

        Returns False (and changes nothing) when this task already has `t.event_key`.
        Raises `TaskNotFoundError` for an unknown task.
        """

        def work(session: Session) -> bool:
            # The row lock serialises transitions of one task (SQLite: the write lock).
            row = _locked_task(session, t.task_id)
            if _seen(session, t):
                return False
            _add_event(session, row, t)
            return True

        return self._db.run_write(work)

    def transition_from(
        self,
        expected: TaskStatus,
        t: Transition,
        *,
        admit: Callable[[Session], None] | None = None,
    ) -> bool:
        """Apply `t` only while the task is still `expected`: a compare-and-set on the status.

        True when it applied (the event is stored and the task moved). False, writing
        nothing, when another request moved the task first, e.g. a stop that won the race
        with a start: the loser then must not act as if its transition had happened.
        Raises `TaskNotFoundError` for an unknown task. `admit` runs in the same
        transaction, the task row locked, just before the task moves; it may refuse by
        raising.
        """

        def work(session: Session) -> bool:
            row = _locked_task(session, t.task_id)
            if row.status != expected.value or t.seq <= row.last_seq or _seen(session, t):
                return False
            if admit is not None:
                admit(session)
            _add_event(session, row, t)
            return True

        return self._db.run_write(work)

    def list_events(self, task_id: str) -> list[TaskEventRecord]:
        query = (
            select(TaskEventRow)
            .where(TaskEventRow.task_id == task_id)
            .order_by(TaskEventRow.at, TaskEventRow.id)
        )
        with self._db.read() as session:
            return [event_record(row) for row in session.scalars(query)]

    def list_active_tasks(
        self, *, region: str | None = None, after_id: str | None = None, limit: int = 1000
    ) -> list[ActiveTaskRef]:
        """SCHEDULING and RUNNING tasks in id order; page with `after_id` = last id seen."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = select(
            TaskRow.id, TaskRow.status, TaskRow.region, TaskRow.attempt, TaskRow.job_name
        ).where(TaskRow.status.in_(sorted(s.value for s in ACTIVE_STATUSES)))
        if region is not None:
            query = query.where(TaskRow.region == region)
        if after_id is not None:
            query = query.where(TaskRow.id > after_id)
        query = query.order_by(TaskRow.id).limit(limit)
        with self._db.read() as session:
            return [
                ActiveTaskRef(
                    id=row.id,
                    status=TaskStatus(row.status),
                    region=row.region,
                    attempt=row.attempt,
                    job_name=row.job_name,
                )
                for row in session.execute(query)
            ]

    def list_unstarted_tasks(
        self, *, created_before: datetime, after_id: str | None = None, limit: int = 200
    ) -> list[TaskRecord]:
        """Tasks recorded SCHEDULING that no workflow ever placed (attempt 0, no region),
        created before `created_before`, in id order; page with `after_id` = last id seen."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = select(TaskRow).where(
            TaskRow.status == TaskStatus.SCHEDULING.value,
            TaskRow.region.is_(None),
            TaskRow.attempt == 0,
            TaskRow.created_at <= ensure_aware(created_before, "created_before"),
        )
        if after_id is not None:
            query = query.where(TaskRow.id > after_id)
        query = query.order_by(TaskRow.id).limit(limit)
        with self._db.read() as session:
            return [task_record(row) for row in session.scalars(query)]

    def add_task_note(self, task_id: str, *, key: str, reason: str, at: datetime) -> bool:
        """Add an event to the task's history that changes nothing else (e.g. a sweep
        that could not act on it). False when the task already has `key`.

        The event carries the task's current status, attempt and region; it is stored as
        not applied, so that the task's state and its seq stay the workflow's alone.
        """
        at = ensure_aware(at, "at")

        def work(session: Session) -> bool:
            row = session.get(TaskRow, task_id, with_for_update=True)
            if row is None:
                raise TaskNotFoundError(task_id)
            seen = session.scalar(
                select(TaskEventRow.id).where(
                    TaskEventRow.task_id == task_id, TaskEventRow.event_key == key
                )
            )
            if seen is not None:
                return False
            session.add(
                TaskEventRow(
                    task_id=task_id,
                    event_key=key,
                    seq=row.last_seq,
                    status=row.status,
                    attempt=row.attempt,
                    region=row.region,
                    job_name=row.job_name,
                    reason=reason,
                    at=at,
                    applied=False,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def get_task_states(self, task_ids: list[str]) -> dict[str, ActiveTaskRef]:
        """Status, region and attempt of many tasks at once (the job sweep's lookup).

        Reads only the columns it needs, in chunks, so that reconciling thousands of
        Jobs costs a handful of queries and no spec parsing.
        """
        result: dict[str, ActiveTaskRef] = {}
        chunk = 500
        with self._db.read() as session:
            for start in range(0, len(task_ids), chunk):
                ids = task_ids[start : start + chunk]
                query = select(
                    TaskRow.id, TaskRow.status, TaskRow.region, TaskRow.attempt, TaskRow.job_name
                ).where(TaskRow.id.in_(ids))
                for row in session.execute(query):
                    result[row.id] = ActiveTaskRef(
                        id=row.id,
                        status=TaskStatus(row.status),
                        region=row.region,
                        attempt=row.attempt,
                        job_name=row.job_name,
                    )
        return result

    def count_tasks_by_status(self) -> dict[str, int]:
        """Every status, zeros included, so dashboards and benchmarks see a fixed shape."""
        counts = {status.value: 0 for status in TaskStatus}
        query = select(TaskRow.status, func.count()).group_by(TaskRow.status)
        with self._db.read() as session:
            for status, count in session.execute(query):
                counts[status] = int(count)
        return counts

    def count_active_by_unit(self) -> list[tuple[str, str, int]]:
        """(status, business unit, tasks) of the active tasks: the metrics' gauge."""
        query = (
            select(TaskRow.status, TaskRow.business_unit, func.count())
            .where(TaskRow.status.in_(sorted(s.value for s in ACTIVE_STATUSES)))
            .group_by(TaskRow.status, TaskRow.business_unit)
        )
        with self._db.read() as session:
            return [(str(s), str(u), int(n)) for s, u, n in session.execute(query)]


def _in_unit(session: Session, business_unit: str, match: ColumnElement[bool]) -> TaskRow | None:
    """The unit's task that `match` names (public id and idempotency key are unique per
    unit, so at most one)."""
    return session.scalars(
        select(TaskRow).where(TaskRow.business_unit == business_unit, match)
    ).one_or_none()


def _locked_task(session: Session, task_id: str) -> TaskRow:
    row = session.get(TaskRow, task_id, with_for_update=True)
    if row is None:
        raise TaskNotFoundError(task_id)
    return row


def _seen(session: Session, t: Transition) -> bool:
    found = session.scalar(
        select(TaskEventRow.id).where(
            TaskEventRow.task_id == t.task_id, TaskEventRow.event_key == t.event_key
        )
    )
    return found is not None


def _add_event(session: Session, row: TaskRow, t: Transition) -> None:
    """Store the event; apply it to the task unless a newer seq was applied already."""
    applies = t.seq > row.last_seq
    session.add(
        TaskEventRow(
            task_id=t.task_id,
            event_key=t.event_key,
            seq=t.seq,
            status=t.status.value,
            attempt=t.attempt,
            region=t.region,
            job_name=t.job_name,
            reason=t.reason,
            at=t.at,
            error=t.error,
            exit_code=t.exit_code,
            placement_summary=t.placement_summary,
            details=t.details,
            applied=applies,
        )
    )
    if applies:
        _apply_transition(row, t)
    session.flush()


def _apply_transition(row: TaskRow, t: Transition) -> None:
    # Where the task runs belongs to an attempt: a transition that does not say keeps
    # the attempt's values; a new attempt starts without the old attempt's.
    if t.attempt == row.attempt:
        row.region = t.region if t.region is not None else row.region
        row.job_name = t.job_name if t.job_name is not None else row.job_name
        if t.placement_summary is not None:
            row.placement_summary = t.placement_summary
    else:
        row.region = t.region
        row.job_name = t.job_name
        row.placement_summary = t.placement_summary
    row.status = t.status.value
    row.attempt = t.attempt
    row.error = t.error
    row.exit_code = t.exit_code
    row.last_seq = t.seq
    row.updated_at = max(row.updated_at, t.at)
    row.finished_at = t.at if t.status.is_terminal else None


def task_record(row: TaskRow) -> TaskRecord:
    return TaskRecord(
        id=row.id,
        public_id=row.public_id,
        name=row.name,
        business_unit=row.business_unit,
        kind=TaskKind(row.kind),
        status=TaskStatus(row.status),
        spec=TaskSpec.model_validate(row.spec),
        spec_hash=row.spec_hash,
        idempotency_key=row.idempotency_key,
        region=row.region,
        job_name=row.job_name,
        attempt=row.attempt,
        placement_summary=row.placement_summary,
        error=row.error,
        exit_code=row.exit_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        version=row.version,
        last_seq=row.last_seq,
    )


def event_record(row: TaskEventRow) -> TaskEventRecord:
    return TaskEventRecord(
        id=row.id,
        task_id=row.task_id,
        event_key=row.event_key,
        seq=row.seq,
        status=TaskStatus(row.status),
        attempt=row.attempt,
        region=row.region,
        job_name=row.job_name,
        reason=row.reason,
        at=row.at,
        error=row.error,
        exit_code=row.exit_code,
        placement_summary=row.placement_summary,
        details=row.details,
        applied=row.applied,
    )
