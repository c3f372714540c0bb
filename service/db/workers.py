"""The ``workers`` table: each worker process's job slots and its heartbeat.

A worker registers at start-up (:func:`register`), beats every few seconds (:func:`beat`,
which registers it again if its row was removed) and removes its row when it stops. The
dispatcher counts only the slots of workers whose heartbeat is fresh (:func:`live`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db.models import Worker, utcnow


def register(session: Session, name: str, *, device_kind: str, slots: int,
             gpu_index: int | None = None, gpu_name: str | None = None,
             memory_bytes: int | None = None) -> None:
    """Insert or refresh this worker's row (a restarted worker keeps its name)."""
    now = utcnow()
    values: dict[str, Any] = dict(device_kind=device_kind, slots=slots, gpu_index=gpu_index,
                                  gpu_name=gpu_name, memory_bytes=memory_bytes,
                                  heartbeat_at=now, started_at=now)
    row = session.get(Worker, name)
    if row is None:
        session.add(Worker(name=name, **values))
    else:
        for k, v in values.items():
            setattr(row, k, v)
    session.flush()


def beat(session: Session, name: str) -> bool:
    """Refresh the heartbeat; False if the row is gone (the caller registers again)."""
    res = session.execute(update(Worker).where(Worker.name == name)
                          .values(heartbeat_at=utcnow()),
                          execution_options={"synchronize_session": False})
    return res.rowcount == 1


def deregister(session: Session, name: str) -> None:
    session.execute(delete(Worker).where(Worker.name == name),
                    execution_options={"synchronize_session": False})


def forget_all(session: Session) -> None:
    """Every row (the embedded server's start-up: its previous worker is gone)."""
    session.execute(delete(Worker), execution_options={"synchronize_session": False})


def live(session: Session, stale_after_s: float) -> list[tuple[str, str, int]]:
    """(name, device kind, slots) of every worker that beat in the last ``stale_after_s``."""
    fresh = utcnow() - timedelta(seconds=stale_after_s)
    rows = session.execute(select(Worker.name, Worker.device_kind, Worker.slots)
                           .where(Worker.heartbeat_at >= fresh).order_by(Worker.name))
    return [(n, k, int(s)) for n, k, s in rows]


def all_workers(session: Session) -> list[Worker]:
    return list(session.scalars(select(Worker).order_by(Worker.name)))
