"""A read-only view of the metric points for dashboards: ``metrics_timeseries`` with a
``time`` column (what Grafana's PostgreSQL data source plots against), the job's name,
owner and sweep.

    SELECT time, value FROM metrics_timeseries
    WHERE job_id = '<id>' AND key = 'loss' AND $__timeFilter(time) ORDER BY time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = "m.job_id, j.name AS job_name, j.owner, j.sweep_id, m.key, m.step, m.value, m.ts"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        time = "to_timestamp(m.ts)"
    else:  # SQLite: ISO text, UTC
        time = "datetime(m.ts, 'unixepoch')"
    op.execute(f"CREATE VIEW metrics_timeseries AS SELECT {time} AS time, {COLUMNS} "
               "FROM metrics m JOIN jobs j ON j.id = m.job_id")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS metrics_timeseries")
