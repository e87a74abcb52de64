"""Orphaned Jobs name their namespace: task Jobs run in their business unit's.

Revision ID: 0003_orphan_namespace
Revises: 0002_quotas_audit
Create Date: 2025-06-15 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_orphan_namespace"
down_revision: str | None = "0002_quotas_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a row recorded before this knows no namespace (its Job was in
    # the services' one), and neither does a create that never answered. The job sweep
    # finds such Jobs by their labels in every namespace.
    with op.batch_alter_table("orphaned_jobs") as batch:
        batch.add_column(sa.Column("namespace", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orphaned_jobs") as batch:
        batch.drop_column("namespace")
