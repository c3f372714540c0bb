"""Storage: the bytes of artifact files each user's jobs hold (a job's own is in
``GET /api/v1/jobs/{id}``, ``storage_bytes``)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import CurrentUser, SessionDep, SettingsDep, readable
from service.api.schemas import OwnerStorage, StorageOut
from service.db.artifacts import bytes_by_owner

router = APIRouter(prefix="/api/v1/storage", tags=["storage"])


@router.get("", response_model=StorageOut)
def storage(session: SessionDep, settings: SettingsDep, user: CurrentUser) -> StorageOut:
    """Every owner's (``VAELAB_READ_SCOPE=owner``: a member's own only)."""
    owners = [OwnerStorage(owner=o, jobs=n, bytes=b) for o, n, b in bytes_by_owner(session)
              if readable(user, settings, o)]
    return StorageOut(total_bytes=sum(o.bytes for o in owners), owners=owners)
