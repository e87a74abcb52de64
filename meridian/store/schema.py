"""The ORM tables. The migrations in `meridian/migrations` create exactly this schema
(a test compares them on both backends), so change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meridian.store.types import JSONText, UTCDateTime

# Named constraints let SQLite batch migrations find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# utf8mb4_bin: ids and idempotency keys are compared byte for byte, as on SQLite.
MYSQL_TABLE_ARGS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

# BIGINT ids on MySQL; on SQLite only INTEGER PRIMARY KEY autoincrements.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_status", "status"),
        Index("ix_tasks_region_status", "region", "status"),
        Index("ix_tasks_business_unit", "business_unit"),
        Index("ix_tasks_created_at_id", "created_at", "id"),
        # Public ids and idempotency keys are scoped per business unit. The public id
        # first: the index also serves an admin's lookup of a bare id across units.
        UniqueConstraint("public_id", "business_unit", name="uq_tasks_public_id_business_unit"),
        UniqueConstraint(
            "business_unit", "idempotency_key", name="uq_tasks_business_unit_idempotency_key"
        ),
        MYSQL_TABLE_ARGS,
    )

    # The task key (meridian/tasks/keys.py): unique across units, the workflow id.
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    # The id the unit knows the task by (API paths and answers); unique within the unit.
    public_id: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    business_unit: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONText())
    spec_hash: Mapped[str] = mapped_column(String(64))
    # 255 utf8mb4 characters stay under InnoDB's 3072-byte index key limit.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    region: Mapped[str | None] = mapped_column(String(64))
    job_name: Mapped[str | None] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # The seq of the last transition applied to the columns above; older ones are ignored.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    placement_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    error: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer)

    # Optimistic locking: every ORM update bumps `version` and checks the old value.
    __mapper_args__ = {"version_id_col": version}


class TaskEventRow(Base):
    __tablename__ = "task_events"
    __table_args__ = (
        UniqueConstraint("task_id", "event_key", name="uq_task_events_task_id_event_key"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(63), ForeignKey("tasks.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(64))
    job_name: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    placement_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    # False when it did not move the task: an older seq that arrived late, or a note
    # (`add_task_note`). Kept as history either way.
    applied: Mapped[bool] = mapped_column(Boolean)


class PlacementRow(Base):
    __tablename__ = "placement_decisions"
    __table_args__ = (
        UniqueConstraint(
            "task_id", "attempt", "seq", name="uq_placement_decisions_task_id_attempt_seq"
        ),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(63), ForeignKey("tasks.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[dict[str, Any]] = mapped_column(JSONText())
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegionStateRow(Base):
    __tablename__ = "region_states"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONText())


class RegionEventRow(Base):
    __tablename__ = "region_events"
    __table_args__ = (Index("ix_region_events_name_at", "name", "at"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    previous_state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONText())


class NetworkPathRow(Base):
    __tablename__ = "network_paths"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    from_region: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A region name or a data-source key such as `aws:us-east-1`.
    target: Mapped[str] = mapped_column(String(128), primary_key=True)
    rtt_ms: Mapped[float] = mapped_column(Double)
    loss: Mapped[float] = mapped_column(Double)
    samples: Mapped[int] = mapped_column(Integer)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SweepRunRow(Base):
    __tablename__ = "sweep_runs"
    __table_args__ = (
        Index("ix_sweep_runs_kind_started_at", "kind", "started_at"),
        Index("ix_sweep_runs_started_at", "started_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(191), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    found: Mapped[dict[str, Any]] = mapped_column(JSONText())
    fixed: Mapped[dict[str, Any]] = mapped_column(JSONText())
    k8s_requests: Mapped[int] = mapped_column(Integer)
    db_queries: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class OrphanRow(Base):
    __tablename__ = "orphaned_jobs"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    # No foreign key: the job sweep also reports Jobs whose task is unknown.
    task_id: Mapped[str | None] = mapped_column(String(63))
    attempt: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where the Job is: its unit's namespace; NULL when not known (a create that never
    # answered; the job sweep finds it by its labels in any namespace).
    namespace: Mapped[str | None] = mapped_column(String(63))


class ScalingModeRow(Base):
    __tablename__ = "scaling_modes"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScalingDecisionRow(Base):
    __tablename__ = "scaling_decisions"
    __table_args__ = (
        Index("ix_scaling_decisions_region_at", "region", "at"),
        MYSQL_TABLE_ARGS,
    )

    # Chosen by the control loop (deterministic per tick) so a retried write is a no-op.
    id: Mapped[str] = mapped_column(String(191), primary_key=True)
    region: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(253))
    reason: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSONText())
    applied: Mapped[bool] = mapped_column(Boolean)


class WaterLevelRow(Base):
    __tablename__ = "water_levels"
    __table_args__ = (
        UniqueConstraint("region", "at", name="uq_water_levels_region_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    region: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[float] = mapped_column(Double)
    cpu_requested: Mapped[int] = mapped_column(BigInteger)  # millicores
    cpu_allocatable: Mapped[int] = mapped_column(BigInteger)  # millicores
    mem_requested: Mapped[int] = mapped_column(BigInteger)  # bytes
    mem_allocatable: Mapped[int] = mapped_column(BigInteger)  # bytes


class UnitAdmissionRow(Base):
    """One row per business unit with a quota: the row every admission of the unit locks
    (so that counting its active tasks and inserting one is atomic across API replicas),
    and the unit's submission token bucket."""

    __tablename__ = "unit_admissions"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    business_unit: Mapped[str] = mapped_column(String(63), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    refilled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One mutating request: who, on whose behalf, what, on what, and how it ended.
    Never the request body (it may carry secrets)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_business_unit_id", "business_unit", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_target_id", "target", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The token's subject, or "anonymous" when no valid token came with the request.
    subject: Mapped[str] = mapped_column(String(255))
    business_unit: Mapped[str | None] = mapped_column(String(63))
    action: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    target_kind: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(255))
    # The HTTP status; NULL while the request runs (or if its end could not be written).
    outcome: Mapped[int | None] = mapped_column(Integer)
