"""Scheduling in the database: worker slots, decayed usage per user, and the dispatcher's
columns on ``jobs``.

``workers``: each worker process registers its slots (device kind, GPU index and name,
memory) and heartbeats. ``user_usage``: each user's decayed device-seconds (fair share).
``jobs``: ``released_to``/``released_at`` (sent to that worker's queue, not yet claimed),
``preempt_requested``, ``preemptible`` and ``preemptions``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("device_kind", sa.String(8), nullable=False),
        sa.Column("gpu_index", sa.Integer(), nullable=True),
        sa.Column("gpu_name", sa.String(200), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "user_usage",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("device_seconds", sa.Double(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    # plain ADD COLUMN (no batch copy: the metrics_timeseries view reads jobs, and SQLite
    # adds a NOT NULL column with a default in place)
    op.add_column("jobs", sa.Column("released_to", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("preempt_requested", sa.Boolean(), nullable=False,
                                    server_default=sa.false()))
    op.add_column("jobs", sa.Column("preemptible", sa.Boolean(), nullable=False,
                                    server_default=sa.true()))
    op.add_column("jobs", sa.Column("preemptions", sa.Integer(), nullable=False,
                                    server_default="0"))


def downgrade() -> None:
    for column in ("preemptions", "preemptible", "preempt_requested", "released_at",
                   "released_to"):
        op.drop_column("jobs", column)
    op.drop_table("user_usage")
    op.drop_table("workers")
