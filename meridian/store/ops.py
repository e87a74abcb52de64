"""What the compensating sweeps did, and Jobs left behind by failover (orphans)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from meridian.store.db import Database
from meridian.store.records import SWEEP_KIND_VALUES, OrphanRecord, SweepKind, SweepRunRecord
from meridian.store.schema import OrphanRow, SweepRunRow
from meridian.store.types import ensure_aware


class OpsStore:
    _db: Database

    def record_sweep_run(
        self,
        *,
        kind: str,
        started_at: datetime,
        finished_at: datetime | None,
        found: dict[str, Any],
        fixed: dict[str, Any],
        k8s_requests: int,
        db_queries: int,
        error: str | None = None,
        run_id: str | None = None,
    ) -> bool:
        """Store one sweep run; False when this run is already stored.

        `run_id` defaults to `<kind>:<started_at>`: a retried activity carries the same
        start time (the workflow's clock), so it finds its own earlier write.
        """
        if kind not in SWEEP_KIND_VALUES:
            raise ValueError(f"sweep kind must be one of {sorted(SWEEP_KIND_VALUES)}")
        started_at = ensure_aware(started_at, "started_at")
        finished = ensure_aware(finished_at, "finished_at") if finished_at else None
        run_id = run_id or f"{kind}:{started_at.isoformat()}"

        def work(session: Session) -> bool:
            if session.get(SweepRunRow, run_id) is not None:
                return False
            session.add(
                SweepRunRow(
                    id=run_id,
                    kind=kind,
                    started_at=started_at,
                    finished_at=finished,
                    found=found,
                    fixed=fixed,
                    k8s_requests=k8s_requests,
                    db_queries=db_queries,
                    error=error,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def list_sweep_runs(self, kind: str | None = None, limit: int = 20) -> list[SweepRunRecord]:
        """Newest first."""
        query = select(SweepRunRow)
        if kind is not None:
            query = query.where(SweepRunRow.kind == kind)
        query = query.order_by(SweepRunRow.started_at.desc(), SweepRunRow.id.desc()).limit(limit)
        with self._db.read() as session:
            return [
                SweepRunRecord(
                    id=row.id,
                    kind=cast(SweepKind, row.kind),
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    found=row.found,
                    fixed=row.fixed,
                    k8s_requests=row.k8s_requests,
                    db_queries=row.db_queries,
                    error=row.error,
                )
                for row in session.scalars(query)
            ]

    def record_orphan(
        self,
        region: str,
        job_name: str,
        *,
        task_id: str | None,
        attempt: int | None,
        reason: str,
        at: datetime,
        namespace: str | None = None,
    ) -> bool:
        """Remember a Job that could not be deleted (its region was unreachable).

        True when newly recorded; an already known orphan is left as it is.
        """
        at = ensure_aware(at)

        def work(session: Session) -> bool:
            if session.get(OrphanRow, (region, job_name)) is not None:
                return False
            session.add(
                OrphanRow(
                    region=region,
                    job_name=job_name,
                    task_id=task_id,
                    attempt=attempt,
                    reason=reason,
                    recorded_at=at,
                    namespace=namespace,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def list_orphans(
        self, region: str | None = None, include_deleted: bool = False
    ) -> list[OrphanRecord]:
        query = select(OrphanRow)
        if region is not None:
            query = query.where(OrphanRow.region == region)
        if not include_deleted:
            query = query.where(OrphanRow.deleted_at.is_(None))
        query = query.order_by(OrphanRow.region, OrphanRow.job_name)
        with self._db.read() as session:
            return [
                OrphanRecord(
                    region=row.region,
                    job_name=row.job_name,
                    task_id=row.task_id,
                    attempt=row.attempt,
                    reason=row.reason,
                    recorded_at=row.recorded_at,
                    deleted_at=row.deleted_at,
                    namespace=row.namespace,
                )
                for row in session.scalars(query)
            ]

    def mark_orphan_deleted(self, region: str, job_name: str, at: datetime) -> bool:
        """True when this call marked it; False if unknown or already marked."""
        at = ensure_aware(at)

        def work(session: Session) -> bool:
            row = session.get(OrphanRow, (region, job_name), with_for_update=True)
            if row is None or row.deleted_at is not None:
                return False
            row.deleted_at = at
            session.flush()
            return True

        return self._db.run_write(work)
