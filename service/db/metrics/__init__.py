"""The ``metrics`` and ``metric_rollups`` tables: the write path (:mod:`.write`), the
downsampled reads (:mod:`.read`) and the bucket min/max rule both use (:mod:`.buckets`)."""

from service.db.metrics.read import (
    Series,
    batches_after,
    minmax_downsample,
    read_series,
    rollup_shifts,
    step_bounds,
)
from service.db.metrics.write import insert_points, last_ts, rollup_rows

__all__ = [
    "Series", "batches_after", "insert_points", "last_ts", "minmax_downsample", "read_series",
    "rollup_rows", "rollup_shifts", "step_bounds",
]
