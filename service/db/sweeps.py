"""The ``sweeps`` table (a sweep's jobs are read through :func:`service.db.jobs.sweep_jobs`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import Sweep


def create_sweep(session: Session, *, name: str, owner: str, base: dict[str, Any],
                 grid: dict[str, Any] | None, overrides: list[Any] | None,
                 n_points: int) -> Sweep:
    sweep = Sweep(id=uuid.uuid4(), name=name, owner=owner, base=base, grid=grid,
                  overrides=overrides, n_points=n_points, cancel_requested=False)
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, sweep_id: uuid.UUID) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def sweep_ids_matching(session: Session, text: str) -> list[uuid.UUID]:
    """Sweep ids that ``text`` (an id or a unique prefix of 6+ hex digits) names."""
    from service.db.ids import matching

    return matching(session, Sweep.id, text)


def list_sweeps(session: Session, *, owner: str | None = None, limit: int = 50,
                offset: int = 0) -> tuple[list[Sweep], int]:
    """One page of sweeps, newest first, and how many match in all."""
    q = select(Sweep)
    if owner:
        q = q.where(Sweep.owner == owner)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(Sweep.created_at.desc(), Sweep.id).limit(limit).offset(offset)).all()
    return list(rows), total


def request_cancel(session: Session, sweep: Sweep) -> None:
    sweep.cancel_requested = True
    session.flush()
