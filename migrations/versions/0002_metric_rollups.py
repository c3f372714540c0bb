"""Metric rollups: per-bucket min/max of each series at bucket widths 16, 256 and 4096 steps.

Creates ``metric_rollups`` and fills it from the points already stored, so downsampled reads
of existing jobs stay exact.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SHIFTS = (4, 8, 12)  # frozen copy of service.db.models.ROLLUP_SHIFTS at this revision

# Portable (PostgreSQL and SQLite): window functions pick each bucket's min and max point,
# the earliest step winning ties. A frozen copy of the bucket rule of
# service/db/metrics/buckets.py as it was at this revision: a migration must keep doing what
# it did when it was written, so it does not import the live rule.
_BACKFILL = """
INSERT INTO metric_rollups (job_id, key, level, bucket, min_value, min_step, max_value,
                            max_step, null_step, first_step, last_step, n)
SELECT a.job_id, a.key, {shift}, a.bucket, mn.value, mn.step, mx.value, mx.step,
       a.null_step, a.first_step, a.last_step, a.n
FROM (SELECT job_id, key, step >> {shift} AS bucket, min(step) AS first_step,
             max(step) AS last_step, count(*) AS n,
             min(CASE WHEN value IS NULL THEN step END) AS null_step
      FROM metrics GROUP BY job_id, key, step >> {shift}) AS a
LEFT JOIN (SELECT job_id, key, step >> {shift} AS bucket, value, step,
                  row_number() OVER (PARTITION BY job_id, key, step >> {shift}
                                     ORDER BY value, step) AS rn
           FROM metrics WHERE value IS NOT NULL) AS mn
  ON mn.job_id = a.job_id AND mn.key = a.key AND mn.bucket = a.bucket AND mn.rn = 1
LEFT JOIN (SELECT job_id, key, step >> {shift} AS bucket, value, step,
                  row_number() OVER (PARTITION BY job_id, key, step >> {shift}
                                     ORDER BY value DESC, step) AS rn
           FROM metrics WHERE value IS NOT NULL) AS mx
  ON mx.job_id = a.job_id AND mx.key = a.key AND mx.bucket = a.bucket AND mx.rn = 1
"""


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("min_step", sa.Integer(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        sa.Column("max_step", sa.Integer(), nullable=True),
        sa.Column("null_step", sa.Integer(), nullable=True),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "key", "level", "bucket"),
    )
    for shift in SHIFTS:
        op.execute(_BACKFILL.format(shift=shift))


def downgrade() -> None:
    op.drop_table("metric_rollups")
