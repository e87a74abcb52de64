"""Scaling modes, scaling decisions with their numbers, and water-level history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meridian.scaling.contracts import ControlDetails
from meridian.store.db import Database
from meridian.store.records import (
    DEFAULT_SCALING_MODE,
    SCALING_MODE_VALUES,
    ScalingDecisionRecord,
    ScalingMode,
    WaterLevelRecord,
)
from meridian.store.schema import (
    RegionStateRow,
    ScalingDecisionRow,
    ScalingModeRow,
    WaterLevelRow,
)
from meridian.store.types import ensure_aware


class ScalingStore:
    _db: Database
    _clock: Callable[[], datetime]

    def get_scaling_mode(self, region: str) -> ScalingMode:
        """The region's mode; "auto" until someone sets another."""
        with self._db.read() as session:
            mode = session.scalar(
                select(ScalingModeRow.mode).where(ScalingModeRow.region == region)
            )
        return ScalingMode(mode) if mode is not None else DEFAULT_SCALING_MODE

    def list_scaling_modes(self) -> dict[str, ScalingMode]:
        """Modes explicitly set; regions not listed are "auto"."""
        with self._db.read() as session:
            rows = session.execute(select(ScalingModeRow.region, ScalingModeRow.mode))
            return {region: ScalingMode(mode) for region, mode in rows}

    def set_scaling_mode(self, region: str, mode: ScalingMode) -> bool:
        """True when the mode changed."""
        if mode not in SCALING_MODE_VALUES:
            raise ValueError(f"scaling mode must be one of {sorted(SCALING_MODE_VALUES)}")
        mode = ScalingMode(mode)

        def work(session: Session) -> bool:
            row = session.get(ScalingModeRow, region, with_for_update=True)
            current = row.mode if row is not None else DEFAULT_SCALING_MODE
            if row is None:
                row = ScalingModeRow(region=region)
                session.add(row)
            elif row.mode == mode:
                return False
            row.mode = mode.value
            row.updated_at = ensure_aware(self._clock())
            session.flush()
            return current != mode

        return self._db.run_write(work)

    def record_scaling_decision(
        self,
        *,
        region: str,
        at: datetime,
        kind: str,
        target: str,
        reason: str,
        numbers: dict[str, Any],
        applied: bool,
        decision_id: str | None = None,
    ) -> bool:
        """Store a decision; False when it is already stored.

        `decision_id` defaults to `<region>:<at>:<kind>:<target>`: the same action on the
        same target at the same (workflow) instant is the same decision, retried.
        """
        at = ensure_aware(at)
        decision_id = decision_id or f"{region}:{at.isoformat()}:{kind}:{target}"

        def work(session: Session) -> bool:
            if session.get(ScalingDecisionRow, decision_id) is not None:
                return False
            session.add(
                ScalingDecisionRow(
                    id=decision_id,
                    region=region,
                    at=at,
                    kind=kind,
                    target=target,
                    reason=reason,
                    numbers=numbers,
                    applied=applied,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def list_scaling_decisions(self, region: str, limit: int = 100) -> list[ScalingDecisionRecord]:
        """Newest first."""
        query = (
            select(ScalingDecisionRow)
            .where(ScalingDecisionRow.region == region)
            .order_by(ScalingDecisionRow.at.desc(), ScalingDecisionRow.id.desc())
            .limit(limit)
        )
        with self._db.read() as session:
            return [
                ScalingDecisionRecord(
                    id=row.id,
                    region=row.region,
                    at=row.at,
                    kind=row.kind,
                    target=row.target,
                    reason=row.reason,
                    numbers=row.numbers,
                    applied=row.applied,
                )
                for row in session.scalars(query)
            ]

    def record_water_level(
        self,
        *,
        region: str,
        at: datetime,
        level: float,
        cpu_requested: int,
        cpu_allocatable: int,
        mem_requested: int,
        mem_allocatable: int,
    ) -> bool:
        """One sample per (region, at); CPU in millicores, memory in bytes."""
        at = ensure_aware(at)

        def work(session: Session) -> bool:
            seen = session.scalar(
                select(WaterLevelRow.id).where(
                    WaterLevelRow.region == region, WaterLevelRow.at == at
                )
            )
            if seen is not None:
                return False
            session.add(
                WaterLevelRow(
                    region=region,
                    at=at,
                    level=level,
                    cpu_requested=cpu_requested,
                    cpu_allocatable=cpu_allocatable,
                    mem_requested=mem_requested,
                    mem_allocatable=mem_allocatable,
                )
            )
            session.flush()
            return True

        return self._db.run_write(work)

    def water_level_history(self, region: str, limit: int = 100) -> list[WaterLevelRecord]:
        """Newest first."""
        query = (
            select(WaterLevelRow)
            .where(WaterLevelRow.region == region)
            .order_by(WaterLevelRow.at.desc())
            .limit(limit)
        )
        with self._db.read() as session:
            return [
                WaterLevelRecord(
                    region=row.region,
                    at=row.at,
                    level=row.level,
                    cpu_requested=row.cpu_requested,
                    cpu_allocatable=row.cpu_allocatable,
                    mem_requested=row.mem_requested,
                    mem_allocatable=row.mem_allocatable,
                )
                for row in session.scalars(query)
            ]

    def merge_region_details(self, region: str, control: ControlDetails) -> bool:
        """Set the control loop's part of a region state's details, leaving state, reason,
        `since` and the region monitor's part alone; False when the region has no state
        yet or nothing changed.

        The monitor carries these keys over under the row lock when it rewrites the
        details (`keep_details`), so its stale copy never clobbers them.
        """
        updates = control.model_dump(mode="json")

        def work(session: Session) -> bool:
            row = session.get(RegionStateRow, region, with_for_update=True)
            if row is None:
                return False
            details = dict(row.details or {})
            if all(details.get(k) == v for k, v in updates.items()):
                return False
            details.update(updates)
            row.details = details  # a new dict: the JSON column sees the change
            session.flush()
            return True

        return self._db.run_write(work)
