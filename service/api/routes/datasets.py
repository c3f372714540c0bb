"""Datasets: upload an ``.npz`` (the request body, streamed; validated as the engine reads
it before it is accepted), list, show, delete. A spec names an upload with
``dataset: {name: npz, path: <its name or id>}``."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from service.api.deps import (
    CurrentUser,
    IdPath,
    SessionDep,
    SettingsDep,
    owner_or_admin,
    readable,
)
from service.api.params import Offset
from service.api.responses import BY_ID, conflict, invalid
from service.api.schemas import DatasetList, DatasetOut
from service.core import access, uploads
from service.db import datasets as datasets_db
from service.db.models import Dataset

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


def _refused(exc: uploads.UploadRefused) -> HTTPException:
    if exc.status == 422:
        return HTTPException(422, [{"field": exc.field, "message": str(exc)}])
    return HTTPException(exc.status, str(exc))


def get_dataset(dataset_id: IdPath, session: SessionDep, user: CurrentUser,
                settings: SettingsDep) -> Dataset:
    """By name, id or unique id prefix."""
    ds = uploads.find(session, dataset_id)
    if ds is None or not readable(user, settings, ds.owner):
        raise HTTPException(404, f"no dataset {dataset_id}")
    return ds


DatasetDep = Annotated[Dataset, Depends(get_dataset)]


def _out(ds: Dataset, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    return DatasetOut.of(ds, uploads.usage(session, settings, ds))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetOut,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}},
             responses={413: {"description": "Larger than VAELAB_DATASET_MAX_BYTES."},
                        409: {"description": "The name is taken."},
                        **invalid("Not a valid .npz (the cause is named).")})
async def upload(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser,
    name: Annotated[str, Query(description="A unique name specs can use.")],
) -> DatasetOut:
    """The body is the ``.npz`` file itself (``Content-Type: application/octet-stream``)."""
    try:
        await anyio.to_thread.run_sync(uploads.check_name, session, name)
        declared = int(request.headers.get("content-length") or 0)
        if declared > settings.dataset_max_bytes:
            raise uploads.UploadRefused(413, "body", f"the upload ({declared} bytes) exceeds "
                                        f"the limit of {settings.dataset_max_bytes} bytes")
        part, sha, size = await uploads.receive(request.stream(), settings)
        ds = await anyio.to_thread.run_sync(
            lambda: uploads.accept(session, settings, part, sha, size, name=name, owner=user.name))
    except uploads.UploadRefused as exc:
        raise _refused(exc) from None
    return await anyio.to_thread.run_sync(_out, ds, session, settings)


@router.get("", response_model=DatasetList)
def list_datasets(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[Offset, Query()] = 0,
) -> DatasetList:
    rows, total = datasets_db.list_datasets(
        session, owner=access.list_owner(user, owner, settings.read_scope), limit=limit,
        offset=offset)
    return DatasetList(items=[_out(d, session, settings) for d in rows], total=total,
                       limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses=BY_ID)
def show_dataset(ds: DatasetDep, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    return _out(ds, session, settings)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=conflict("A waiting or running job reads it."))
def delete_dataset(ds: DatasetDep, session: SessionDep, settings: SettingsDep,
                   user: CurrentUser) -> None:
    """Its owner or an admin."""
    owner_or_admin(user, ds.owner, "delete", "dataset")
    try:
        uploads.delete(session, settings, ds)
    except uploads.UploadRefused as exc:
        raise _refused(exc) from None
