"""Initial schema: tasks, events, placements, regions, network, sweeps, orphans, scaling.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Storage types spelled out here rather than imported from the application, so this
# migration keeps creating the same schema whatever the models become later.
MYSQL = ("mysql", "mariadb")
TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _dt() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), *MYSQL)


def _auto_id() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("business_unit", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("job_name", sa.String(128), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("placement_summary", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.Column("finished_at", _dt(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.UniqueConstraint("idempotency_key", name="uq_tasks_idempotency_key"),
        **TABLE,
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_region_status", "tasks", ["region", "status"])
    op.create_index("ix_tasks_business_unit", "tasks", ["business_unit"])
    op.create_index("ix_tasks_created_at_id", "tasks", ["created_at", "id"])

    op.create_table(
        "task_events",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(63), nullable=False),
        sa.Column("event_key", sa.String(128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("job_name", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("placement_summary", _json(), nullable=True),
        sa.Column("details", _json(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_events"),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name="fk_task_events_task_id_tasks", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("task_id", "event_key", name="uq_task_events_task_id_event_key"),
        **TABLE,
    )

    op.create_table(
        "placement_decisions",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(63), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("decision", _json(), nullable=False),
        sa.Column("decided_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_placement_decisions"),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name="fk_placement_decisions_task_id_tasks",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "task_id", "attempt", "seq", name="uq_placement_decisions_task_id_attempt_seq"
        ),
        **TABLE,
    )

    op.create_table(
        "region_states",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_region_states"),
        **TABLE,
    )

    op.create_table(
        "region_events",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("previous_state", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_region_events"),
        **TABLE,
    )
    op.create_index("ix_region_events_name_at", "region_events", ["name", "at"])

    op.create_table(
        "network_paths",
        sa.Column("from_region", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("rtt_ms", sa.Double(), nullable=False),
        sa.Column("loss", sa.Double(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("measured_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("from_region", "target", name="pk_network_paths"),
        **TABLE,
    )

    op.create_table(
        "sweep_runs",
        sa.Column("id", sa.String(191), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("started_at", _dt(), nullable=False),
        sa.Column("finished_at", _dt(), nullable=True),
        sa.Column("found", _json(), nullable=False),
        sa.Column("fixed", _json(), nullable=False),
        sa.Column("k8s_requests", sa.Integer(), nullable=False),
        sa.Column("db_queries", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sweep_runs"),
        **TABLE,
    )
    op.create_index("ix_sweep_runs_kind_started_at", "sweep_runs", ["kind", "started_at"])
    op.create_index("ix_sweep_runs_started_at", "sweep_runs", ["started_at"])

    op.create_table(
        "orphaned_jobs",
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("job_name", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(63), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", _dt(), nullable=False),
        sa.Column("deleted_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("region", "job_name", name="pk_orphaned_jobs"),
        **TABLE,
    )

    op.create_table(
        "scaling_modes",
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("region", name="pk_scaling_modes"),
        **TABLE,
    )

    op.create_table(
        "scaling_decisions",
        sa.Column("id", sa.String(191), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(253), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers", _json(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scaling_decisions"),
        **TABLE,
    )
    op.create_index("ix_scaling_decisions_region_at", "scaling_decisions", ["region", "at"])

    op.create_table(
        "water_levels",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("level", sa.Double(), nullable=False),
        sa.Column("cpu_requested", sa.BigInteger(), nullable=False),
        sa.Column("cpu_allocatable", sa.BigInteger(), nullable=False),
        sa.Column("mem_requested", sa.BigInteger(), nullable=False),
        sa.Column("mem_allocatable", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_water_levels"),
        sa.UniqueConstraint("region", "at", name="uq_water_levels_region_at"),
        **TABLE,
    )


def downgrade() -> None:
    for table in (
        "water_levels",
        "scaling_decisions",
        "scaling_modes",
        "orphaned_jobs",
        "sweep_runs",
        "network_paths",
        "region_events",
        "region_states",
        "placement_decisions",
        "task_events",
        "tasks",
    ):
        op.drop_table(table)
