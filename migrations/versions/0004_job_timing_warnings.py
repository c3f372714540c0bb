"""A job's measured timing (the ETA's inputs) and the engine's warnings about it.

Adds ``jobs.timing`` (JSON: step_s, eval_s, evals_left, finish_at, written by the worker's
sink) and ``jobs.warnings`` (JSON list of strings, e.g. a Bernoulli likelihood on
non-binary data). Both nullable: existing jobs have neither.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("timing", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("warnings")
        batch.drop_column("timing")
