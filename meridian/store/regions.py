"""Region health (current state plus a change log) and measured network paths."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from meridian.regions.details import RegionDetails
from meridian.store.db import Database
from meridian.store.records import (
    REGION_HEALTH_VALUES,
    NetworkPathRecord,
    RegionEventRecord,
    RegionHealth,
    RegionStateRecord,
)
from meridian.store.schema import NetworkPathRow, RegionEventRow, RegionStateRow
from meridian.store.types import ensure_aware


class RegionStore:
    _db: Database

    def record_region_state(
        self,
        name: str,
        state: RegionHealth,
        reason: str,
        at: datetime,
        details: RegionDetails | None = None,
        *,
        keep_details: Iterable[str] = (),
    ) -> bool:
        """Set a region's state; True (and one region event) only when the state changed.

        `keep_details` names keys another writer owns (the control loop's `draining`):
        their current values are carried over under the row lock, so this write cannot
        clobber a value written since the caller read the row.

        The first state ever recorded for a region counts as a change. While the state
        stays the same, reason and details are refreshed but `since` is kept, so "down
        since" stays the moment the region went down.
        """
        if state not in REGION_HEALTH_VALUES:
            raise ValueError(f"region state must be one of {sorted(REGION_HEALTH_VALUES)}")
        value = RegionHealth(state).value  # the plain string, for every DB driver
        at = ensure_aware(at)
        given = details_json(details) if details is not None else None

        def work(session: Session) -> bool:
            row = session.get(RegionStateRow, name, with_for_update=True)
            previous = row.state if row is not None else None
            if row is None:
                row = RegionStateRow(name=name, state=value, since=at)
                session.add(row)
            elif row.state != value:
                row.state = value
                row.since = at
            row.reason = reason
            current = row.details or {}
            kept = {k: current[k] for k in keep_details if k in current}
            written = {**(given or {}), **kept} if kept else given
            row.details = written
            row.updated_at = at
            changed = previous != value
            if changed:
                session.add(
                    RegionEventRow(
                        name=name,
                        state=value,
                        previous_state=previous,
                        reason=reason,
                        at=at,
                        details=written,
                    )
                )
            session.flush()
            return changed

        return self._db.run_write(work)

    def get_region_states(self) -> dict[str, RegionStateRecord]:
        with self._db.read() as session:
            rows = session.scalars(select(RegionStateRow).order_by(RegionStateRow.name))
            return {
                row.name: RegionStateRecord(
                    name=row.name,
                    state=RegionHealth(row.state),
                    reason=row.reason,
                    since=row.since,
                    updated_at=row.updated_at,
                    details=RegionDetails.model_validate(row.details or {}),
                )
                for row in rows
            }

    def list_region_events(
        self, name: str | None = None, limit: int = 100
    ) -> list[RegionEventRecord]:
        """Newest first."""
        query = select(RegionEventRow)
        if name is not None:
            query = query.where(RegionEventRow.name == name)
        query = query.order_by(RegionEventRow.at.desc(), RegionEventRow.id.desc()).limit(limit)
        with self._db.read() as session:
            return [
                RegionEventRecord(
                    id=row.id,
                    name=row.name,
                    state=RegionHealth(row.state),
                    previous_state=RegionHealth(row.previous_state) if row.previous_state else None,
                    reason=row.reason,
                    at=row.at,
                    details=row.details,
                )
                for row in session.scalars(query)
            ]

    def upsert_network_path(
        self,
        from_region: str,
        target: str,
        rtt_ms: float,
        loss: float,
        samples: int,
        at: datetime,
    ) -> NetworkPathRecord:
        """Replace the measurement of one path (callers pass already-smoothed values)."""
        at = ensure_aware(at)

        def work(session: Session) -> NetworkPathRecord:
            row = session.get(NetworkPathRow, (from_region, target), with_for_update=True)
            if row is None:
                row = NetworkPathRow(from_region=from_region, target=target)
                session.add(row)
            row.rtt_ms = rtt_ms
            row.loss = loss
            row.samples = samples
            row.measured_at = at
            session.flush()
            return _path_record(row)

        return self._db.run_write(work)

    def list_network_paths(self, from_region: str | None = None) -> list[NetworkPathRecord]:
        query = select(NetworkPathRow)
        if from_region is not None:
            query = query.where(NetworkPathRow.from_region == from_region)
        query = query.order_by(NetworkPathRow.from_region, NetworkPathRow.target)
        with self._db.read() as session:
            return [_path_record(row) for row in session.scalars(query)]


def details_json(details: RegionDetails) -> dict[str, Any]:
    """The JSON column's value: unset (None) fields left out, as they always were."""
    return details.model_dump(mode="json", exclude_none=True)


def _path_record(row: NetworkPathRow) -> NetworkPathRecord:
    return NetworkPathRecord(
        from_region=row.from_region,
        target=row.target,
        rtt_ms=row.rtt_ms,
        loss=row.loss,
        samples=row.samples,
        measured_at=row.measured_at,
    )
