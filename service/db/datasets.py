"""The ``datasets`` table: uploaded ``.npz`` files (the jobs that use one are read through
:func:`service.db.jobs.jobs_reading`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.db.models import Dataset


def create_dataset(session: Session, *, dataset_id: uuid.UUID, name: str, owner: str,
                   path: str, sha256: str, size: int, info: dict[str, Any]) -> Dataset:
    row = Dataset(id=dataset_id, name=name, owner=owner, path=path, sha256=sha256, bytes=size,
                  info=info)
    session.add(row)
    session.flush()
    return row


def by_name(session: Session, name: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.name == name))


def get_dataset(session: Session, dataset_id: uuid.UUID) -> Dataset | None:
    return session.get(Dataset, dataset_id)


def dataset_ids_matching(session: Session, text: str) -> list[uuid.UUID]:
    """Dataset ids that ``text`` (an id or a unique prefix of 6+ hex digits) names."""
    from service.db.ids import matching

    return matching(session, Dataset.id, text)


def list_datasets(session: Session, *, owner: str | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[list[Dataset], int]:
    q = select(Dataset)
    if owner:
        q = q.where(Dataset.owner == owner)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Dataset.created_at.desc(), Dataset.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def delete_dataset(session: Session, dataset_id: uuid.UUID) -> None:
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
