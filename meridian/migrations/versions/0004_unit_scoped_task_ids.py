"""Task ids and Idempotency-Keys scoped per business unit.

A task's row keeps its key in `id` (the workflow id, unique across units, see
meridian/tasks/keys.py) and gains `public_id`, the id its unit knows it by, unique per
(business_unit, public_id). The Idempotency-Key becomes unique per (business_unit, key)
instead of across every unit. Existing rows keep their key and their workflows: their
public id is their old id.

Revision ID: 0004_unit_scoped_task_ids
Revises: 0003_orphan_namespace
Create Date: 2025-07-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_unit_scoped_task_ids"
down_revision: str | None = "0003_orphan_namespace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added nullable, filled, then made NOT NULL: SQLite cannot add a NOT NULL column
    # without a default, and a default would outlive the backfill.
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("public_id", sa.String(63), nullable=True))
    op.execute("UPDATE tasks SET public_id = id")
    # On SQLite this rebuilds the table (migrate.py turns foreign keys off meanwhile, so
    # the rebuild does not cascade to events and placements).
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("public_id", existing_type=sa.String(63), nullable=False)
        batch.drop_constraint("uq_tasks_idempotency_key", type_="unique")
        # The public id first: the index also serves an admin's lookup of a bare id in
        # every unit.
        batch.create_unique_constraint(
            "uq_tasks_public_id_business_unit", ["public_id", "business_unit"]
        )
        batch.create_unique_constraint(
            "uq_tasks_business_unit_idempotency_key", ["business_unit", "idempotency_key"]
        )


def downgrade() -> None:
    # Only possible while no two units share an id or a key; the unique index says so.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint("uq_tasks_business_unit_idempotency_key", type_="unique")
        batch.drop_constraint("uq_tasks_public_id_business_unit", type_="unique")
        batch.create_unique_constraint("uq_tasks_idempotency_key", ["idempotency_key"])
        batch.drop_column("public_id")
