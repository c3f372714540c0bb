"""Uploaded datasets: one row per validated ``.npz`` under the dataset root.

Creates ``datasets`` (id, a unique name, owner, the file's path relative to the dataset
root, its sha256 and size, what it holds as JSON: shape, dtype, examples, factors).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_datasets_name", "datasets", ["name"], unique=True)
    op.create_index("ix_datasets_owner", "datasets", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_datasets_owner", table_name="datasets")
    op.drop_index("uq_datasets_name", table_name="datasets")
    op.drop_table("datasets")
