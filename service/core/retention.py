"""Which checkpoints a job keeps, and removing the others: the last N (the spec's
``train.keep_checkpoints``, else the deployment's ``VAELAB_CHECKPOINT_KEEP_LAST``; 0 keeps
every one), plus the one at the best test ELBO and the final (newest) one, which a resume
starts from. Called by the worker after each checkpoint it writes.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from service.db import artifacts as artifacts_db
from service.db.evaluations import elbo_by_step

log = logging.getLogger(__name__)


def keep_last(spec: dict[str, Any], default: int) -> int:
    n = (spec.get("train") or {}).get("keep_checkpoints")
    return default if n is None else int(n)


def to_keep(steps: list[int], elbos: dict[int, float], last: int) -> set[int]:
    """The steps whose checkpoints stay: the ``last`` newest (all if 0), the best-ELBO one
    among the checkpointed steps, and the newest."""
    if not steps or last <= 0:
        return set(steps)
    ordered = sorted(set(steps))
    keep = set(ordered[-last:])
    scored = [s for s in ordered if s in elbos]
    if scored:
        keep.add(max(scored, key=lambda s: (elbos[s], s)))
    keep.add(ordered[-1])
    return keep


def prune(engine: Any, artifact_root: Path, job_id: uuid.UUID, last: int,
          lease: str | None = None) -> list[int]:
    """Remove the checkpoints :func:`to_keep` does not keep (the row first, then the file:
    a crash in between leaves a stray file, never a row without its file). Returns the
    steps removed. With ``lease`` (a worker's attempt), the rows go only while it holds the
    lease (else LeaseLost, and no file is touched): a stale attempt prunes nothing."""
    if last <= 0:
        return []
    rows = artifacts_db.checkpoint_rows(engine, job_id)
    keep = to_keep([step for _id, step, _p in rows], elbo_by_step(engine, job_id), last)
    gone = [(i, step, path) for i, step, path in rows if step not in keep]
    artifacts_db.delete_artifact_rows(engine, [i for i, _s, _p in gone], job_id, lease)
    root = Path(artifact_root).resolve()
    for _i, _step, rel in gone:
        path = (root / rel).resolve()
        if path.is_relative_to(root):
            path.unlink(missing_ok=True)
    if gone:
        log.info("job %s: pruned checkpoints at steps %s", job_id, [s for _i, s, _p in gone])
    return [s for _i, s, _p in gone]
