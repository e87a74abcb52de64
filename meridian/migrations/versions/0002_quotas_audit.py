"""Quotas and audit: the per-unit admission row (lock + token bucket) and the audit log.

Revision ID: 0002_quotas_audit
Revises: 0001_initial
Create Date: 2025-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002_quotas_audit"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Storage types spelled out here, as in 0001, so this migration never changes meaning.
MYSQL = ("mysql", "mariadb")
TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _dt() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), *MYSQL)


def _auto_id() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "unit_admissions",
        sa.Column("business_unit", sa.String(63), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refilled_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("business_unit", name="pk_unit_admissions"),
        **TABLE,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("at", _dt(), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("business_unit", sa.String(63), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        **TABLE,
    )
    op.create_index("ix_audit_log_business_unit_id", "audit_log", ["business_unit", "id"])
    op.create_index("ix_audit_log_action_id", "audit_log", ["action", "id"])
    op.create_index("ix_audit_log_target_id", "audit_log", ["target", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("unit_admissions")
