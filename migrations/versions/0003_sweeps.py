"""Sweeps and per-step evaluation summaries.

Creates ``sweeps`` and ``evaluations`` and adds ``jobs.sweep_id`` (nullable, indexed, a
foreign key to ``sweeps``), ``jobs.sweep_index`` and ``jobs.sweep_params``. Existing jobs
belong to no sweep; their evaluation history starts with their next evaluation (the latest
summary stays in ``jobs.summary``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("grid", sa.JSON(), nullable=True),
        sa.Column("overrides", sa.JSON(), nullable=True),
        sa.Column("n_points", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sweeps_owner", "sweeps", ["owner"])
    op.create_index("ix_sweeps_created_at", "sweeps", ["created_at"])

    # batch mode: SQLite cannot add a foreign key to an existing table in place (the table is
    # copied; PostgreSQL gets plain ALTER TABLE statements)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("sweep_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sweep_params", sa.JSON(), nullable=True))
        batch.create_foreign_key("fk_jobs_sweep_id", "sweeps", ["sweep_id"], ["id"],
                                 ondelete="SET NULL")
        batch.create_index("ix_jobs_sweep_id", ["sweep_id"])

    op.create_table(
        "evaluations",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "step"),
    )


def downgrade() -> None:
    op.drop_table("evaluations")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_sweep_id")
        batch.drop_constraint("fk_jobs_sweep_id", type_="foreignkey")
        batch.drop_column("sweep_params")
        batch.drop_column("sweep_index")
        batch.drop_column("sweep_id")
    op.drop_index("ix_sweeps_created_at", table_name="sweeps")
    op.drop_index("ix_sweeps_owner", table_name="sweeps")
    op.drop_table("sweeps")
