"""Safe resolution of artifact paths: nothing outside the artifact root is ever served (and
no dataset outside the dataset root is ever read, :func:`resolve_inside`).

A path from a request (or one stored in ``artifacts.path``) is accepted only if it is
relative, made of plain components (no ``..``, ``.``, empty parts, backslashes, drive letters,
NUL or other control characters), stays plain after URL-decoding (``%2e%2e``, ``%252e``,
``%2f`` are refused, not decoded again), and still lies inside the root once symlinks are
resolved.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")


class UnsafePath(ValueError):
    """The path would leave the artifact root or is not a plain relative path."""


def check_relative(rel: str) -> PurePosixPath:
    """A plain relative POSIX path, or :class:`UnsafePath`."""
    if not isinstance(rel, str) or not rel or len(rel) > 1000:
        raise UnsafePath("empty or over-long path")
    if unquote(rel) != rel or "%" in rel:
        # the router already decoded once: anything still encoded is an attempt at a
        # second decoding somewhere down the line
        raise UnsafePath("encoded characters in the path")
    if _BAD_CHARS.search(rel) or rel.startswith(("/", "~")):
        raise UnsafePath("absolute path or forbidden characters")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePath("'.', '..' or empty components")
    return PurePosixPath(*parts)


def resolve_under(root: Path, rel: str) -> Path:
    """``root / rel`` after :func:`check_relative`, verified (symlinks resolved) to be inside
    ``root``."""
    root_r = Path(root).resolve()
    path = (root_r / check_relative(rel)).resolve()
    if not path.is_relative_to(root_r):
        raise UnsafePath("path leaves the artifact root")
    return path


def job_relative(job_id: uuid.UUID, rel: str) -> str:
    """The stored path (relative to the artifact root) of a path relative to a job's folder."""
    check_relative(rel)
    return f"{job_id}/{rel}"


def resolve_inside(root: Path, path: str) -> Path:
    """A user-given file path confined to ``root``: a relative path is taken relative to
    ``root`` (:func:`resolve_under`); an absolute one is accepted only if, symlinks resolved,
    it lies inside ``root``. Returns the resolved absolute path, or :class:`UnsafePath`."""
    if isinstance(path, str) and path.startswith("/"):
        if _BAD_CHARS.search(path) or len(path) > 1000:
            raise UnsafePath("forbidden characters or over-long path")
        root_r = Path(root).resolve()
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(root_r) or resolved == root_r:
            raise UnsafePath("must lie inside the dataset root (VAELAB_DATASET_ROOT)")
        return resolved
    try:
        return resolve_under(root, path)
    except UnsafePath as exc:
        raise UnsafePath(f"{exc}; give a path relative to the dataset root "
                         "(VAELAB_DATASET_ROOT)") from None
