"""Uploaded datasets: receiving an ``.npz`` as a stream (bounded by
``VAELAB_DATASET_MAX_BYTES``), validating it exactly as the engine reads it
(:func:`vae_engine.data.npz.check_npz`: arrays, shapes, dtype, range, factors, no pickle)
before it is accepted, storing it under ``<dataset root>/uploads/<id>.npz`` with its
sha256 and owner, letting specs name it, and deleting it when no waiting or running job
reads it."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.core.config import Settings
from service.db import datasets as datasets_db
from service.db.jobs import jobs_reading
from service.db.models import Dataset

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
UPLOADS = "uploads"


class UploadRefused(ValueError):
    """A refused upload or deletion: ``status`` (413, 409, 422) and the ``field`` named."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field = status, field


def check_name(session: Session, name: str) -> None:
    if not NAME.match(name or ""):
        raise UploadRefused(422, "name", "1 to 100 letters, digits, '.', '_' or '-', "
                                         "starting with a letter or a digit")
    if datasets_db.by_name(session, name) is not None:
        raise UploadRefused(409, "name", f"a dataset named {name!r} exists already")


async def receive(chunks: AsyncIterator[bytes], settings: Settings) -> tuple[Path, str, int]:
    """Write the body to a part file under the upload folder, counting and hashing it;
    refuse (413) past the size limit. Returns (part file, sha256, bytes)."""
    folder = settings.datasets / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".incoming-{uuid.uuid4().hex}.part"
    digest, size, limit = hashlib.sha256(), 0, settings.dataset_max_bytes
    try:
        with part.open("wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadRefused(413, "body", f"the upload exceeds the limit of "
                                                     f"{limit} bytes")
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if size == 0:
        part.unlink(missing_ok=True)
        raise UploadRefused(422, "body", "the upload is empty; send the .npz file's bytes")
    return part, digest.hexdigest(), size


def accept(session: Session, settings: Settings, part: Path, sha256: str, size: int, *,
           name: str, owner: str) -> Dataset:
    """Validate the received file as the engine would read it, then keep it and record it;
    the part file is removed whatever happens."""
    from vae_engine.data.npz import check_npz  # numpy only: no torch in the API
    from vae_engine.errors import DataError

    dataset_id = uuid.uuid4()
    final = part.parent / f"{dataset_id}.npz"
    try:
        try:
            info = check_npz(part)
        except DataError as exc:
            raise UploadRefused(422, "body", str(exc).replace(str(part), "the upload")) \
                from None
        check_name(session, name)
        part.rename(final)
        row = datasets_db.create_dataset(
            session, dataset_id=dataset_id, name=name, owner=owner,
            path=f"{UPLOADS}/{final.name}", sha256=sha256, size=size, info=info)
        session.commit()
        return row
    except BaseException:
        session.rollback()
        final.unlink(missing_ok=True)
        raise
    finally:
        part.unlink(missing_ok=True)


def file_of(settings: Settings, ds: Dataset) -> Path:
    return (settings.datasets / ds.path).resolve()


def usage(session: Session, settings: Settings, ds: Dataset) -> dict[str, int]:
    return jobs_reading(session, str(file_of(settings, ds)))


def delete(session: Session, settings: Settings, ds: Dataset) -> None:
    """Remove a dataset unless a waiting or running job reads it (409)."""
    used = usage(session, settings, ds)
    active = used.get("queued", 0) + used.get("running", 0)
    if active:
        raise UploadRefused(409, "dataset", f"dataset {ds.name} is read by {active} waiting "
                                            "or running job(s); cancel them or wait")
    path = file_of(settings, ds)
    datasets_db.delete_dataset(session, ds.id)
    session.commit()
    path.unlink(missing_ok=True)


def name_uploaded(session: Session, settings: Settings, spec: Any) -> Any:
    """A spec whose npz dataset names an uploaded dataset (by name, id or id prefix rather
    than by a path) with that dataset's file; anything else unchanged."""
    ds_spec = spec.get("dataset") if isinstance(spec, dict) else None
    if not isinstance(ds_spec, dict) or ds_spec.get("name") != "npz":
        return spec
    ref = ds_spec.get("path")
    if not isinstance(ref, str) or "/" in ref or ref.endswith(".npz"):
        return spec
    ds = find(session, ref)
    if ds is None:
        return spec
    return {**spec, "dataset": {**ds_spec, "path": str(file_of(settings, ds))}}


def find(session: Session, ref: str) -> Dataset | None:
    """The dataset named ``ref``, or whose id (or unique id prefix) it is."""
    from service.db.ids import BadId

    ds = datasets_db.by_name(session, ref)
    if ds is not None:
        return ds
    try:
        ids = datasets_db.dataset_ids_matching(session, ref)
    except BadId:
        return None
    return datasets_db.get_dataset(session, ids[0]) if len(ids) == 1 else None
