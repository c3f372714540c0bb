"""The history of a job's attempts.

Creates ``job_attempts`` (job id, attempt number, the attempt's lease, worker and broker
delivery tag, when it started and ended, the steps it started and ended at, the reason it
ended and its message).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_attempts",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease", sa.String(length=36), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("delivery_tag", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_step", sa.Integer(), nullable=True),
        sa.Column("end_step", sa.Integer(), nullable=True),
        sa.Column("ended", sa.String(length=16), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "attempt"),
    )
    op.create_index("ix_job_attempts_lease", "job_attempts", ["lease"])


def downgrade() -> None:
    op.drop_index("ix_job_attempts_lease", table_name="job_attempts")
    op.drop_table("job_attempts")
