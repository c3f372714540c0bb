"""Bodies of dataset uploads and of the storage report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.api.schemas.jobs import aware


class OwnerStorage(BaseModel):
    owner: str
    jobs: int = Field(description="Jobs of this owner that hold files.")
    bytes: int


class StorageOut(BaseModel):
    total_bytes: int
    owners: list[OwnerStorage]


class DatasetOut(BaseModel):
    id: uuid.UUID
    name: str
    owner: str
    sha256: str
    bytes: int
    shape: list[int] = Field(description="C x H x W of each example.")
    dtype: str = Field(description="As stored in the file (uint8, bool, float32...).")
    train_examples: int
    test_examples: int
    factors: list[str] = Field(description="Names of the y columns (empty: no factors).")
    created_at: datetime
    jobs: dict[str, int] = Field(description="Jobs reading it, per status.")
    spec: dict[str, Any] = Field(description="The spec's dataset section that names it.")

    @classmethod
    def of(cls, ds: Any, jobs: dict[str, int]) -> DatasetOut:
        info = ds.info
        return cls(id=ds.id, name=ds.name, owner=ds.owner, sha256=ds.sha256, bytes=ds.bytes,
                   shape=info["shape"], dtype=info["dtype"],
                   train_examples=info["train_examples"], test_examples=info["test_examples"],
                   factors=info["factors"], created_at=aware(ds.created_at), jobs=jobs,
                   spec={"name": "npz", "path": ds.name})


class DatasetList(BaseModel):
    items: list[DatasetOut]
    total: int
    limit: int
    offset: int
