"""The ``metrics`` and ``metric_rollups`` tables: the write path (:mod:`.write`), the
downsampled reads (:mod:`.read`), the bucket min/max rule both use (:mod:`.buckets`) and
a deleted job's removal (:mod:`.delete`)."""

from service.db.metrics.delete import delete_job_metrics
from service.db.metrics.read import (
    Series,
    batches_after,
    minmax_downsample,
    read_series,
    rollup_shifts,
    step_bounds,
)
from service.db.metrics.write import insert_columns, insert_points, last_ts, rollup_rows

__all__ = [
    "Series", "batches_after", "delete_job_metrics", "insert_columns", "insert_points", "last_ts",
    "minmax_downsample", "read_series", "rollup_rows", "rollup_shifts", "step_bounds",
]
