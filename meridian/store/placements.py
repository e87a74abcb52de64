"""Placement decisions with their score breakdowns ("why this region", "why pending")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meridian.store.db import Database
from meridian.store.errors import TaskNotFoundError
from meridian.store.records import PlacementRecord
from meridian.store.schema import PlacementRow, TaskRow
from meridian.store.types import ensure_aware


class PlacementStore:
    _db: Database

    def record_placement(
        self, task_id: str, attempt: int, seq: int, decision: dict[str, Any], decided_at: datetime
    ) -> bool:
        """Store one decision per (task, attempt, seq); False if it was already stored."""
        decided_at = ensure_aware(decided_at, "decided_at")

        def work(session: Session) -> bool:
            seen = session.scalar(
                select(PlacementRow.id).where(
                    PlacementRow.task_id == task_id,
                    PlacementRow.attempt == attempt,
                    PlacementRow.seq == seq,
                )
            )
            if seen is not None:
                return False
            if session.get(TaskRow, task_id) is None:
                raise TaskNotFoundError(task_id)
            session.add(
                PlacementRow(
                    task_id=task_id,
                    attempt=attempt,
                    seq=seq,
                    decision=decision,
                    decided_at=decided_at,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def latest_placement(self, task_id: str) -> dict[str, Any] | None:
        query = (
            select(PlacementRow.decision)
            .where(PlacementRow.task_id == task_id)
            .order_by(PlacementRow.attempt.desc(), PlacementRow.seq.desc())
            .limit(1)
        )
        with self._db.read() as session:
            decision: dict[str, Any] | None = session.scalar(query)
            return decision

    def list_placements(self, task_id: str) -> list[PlacementRecord]:
        query = (
            select(PlacementRow)
            .where(PlacementRow.task_id == task_id)
            .order_by(PlacementRow.attempt, PlacementRow.seq)
        )
        with self._db.read() as session:
            return [
                PlacementRecord(
                    task_id=row.task_id,
                    attempt=row.attempt,
                    seq=row.seq,
                    decision=row.decision,
                    decided_at=row.decided_at,
                )
                for row in session.scalars(query)
            ]
