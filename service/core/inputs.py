"""A job's input files opened safely, at submit and again by the worker.

At submit the resolved spec holds each user file's path inside ``VAELAB_DATASET_ROOT``
(:func:`service.core.datasets.confine_dataset`) and :func:`checksums` records their
sha256 with the job. Before training the worker opens each file again with
:func:`open_confined`: from the root down, one component at a time (``openat`` with
``O_NOFOLLOW``), so a symlink swapped in after submit, anywhere below the root, is refused
rather than followed; the result must be a regular file, and its sha256 must be the one
recorded. The engine then reads that open file (``/proc/self/fd/N``), never the path again.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from service.artifact_paths import UnsafePath


class InputChanged(UnsafePath):
    """A job's input file is no longer the one checked at submit (moved outside the root,
    replaced by a link, or its contents changed)."""


def open_confined(path: str, root: Path) -> int:
    """A read-only descriptor of ``path`` (absolute, inside ``root``), no link followed
    below ``root``. Raises :class:`InputChanged`."""
    root = Path(root).resolve()
    target = Path(os.path.normpath(path))
    if not target.is_absolute() or not target.is_relative_to(root) or target == root:
        raise InputChanged(f"{path} is not inside the dataset root")
    parts = target.relative_to(root).parts
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags | os.O_DIRECTORY)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(name, flags | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            except OSError as exc:  # ELOOP: a symlink; ENOTDIR: a link or file in the way
                raise InputChanged(
                    f"{path}: cannot be opened inside the dataset root without following a "
                    f"link ({exc.strerror})") from None
            os.close(fd)
            fd = nxt
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputChanged(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def sha256_fd(fd: int) -> str:
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    os.lseek(fd, 0, os.SEEK_SET)
    return h.hexdigest()


def user_file_paths(spec: dict[str, Any]) -> dict[str, str]:
    """``{dotted field: path}`` of a resolved spec's declared user files."""
    from vae_engine.spec import parse_spec, user_files

    return {k: str(v) for k, v in user_files(parse_spec(spec)).items()}


def checksums(spec: dict[str, Any], root: Path) -> dict[str, str] | None:
    """At submit: ``{dotted field: sha256}`` of the spec's user files; None if it has none.
    A file that cannot be opened safely is left out (the worker then refuses it)."""
    out: dict[str, str] = {}
    for dotted, path in user_file_paths(spec).items():
        try:
            fd = open_confined(path, root)
        except (InputChanged, OSError):
            continue
        try:
            out[dotted] = sha256_fd(fd)
        finally:
            os.close(fd)
    return out or None


def open_inputs(spec: dict[str, Any], recorded: dict[str, str] | None,
                root: Path) -> tuple[dict[str, str], list[int]]:
    """In the worker: ``{dotted field: /proc/self/fd/N}``, the open, verified file to read for
    each user file of ``spec`` (``train(read_files=...)``: the spec, and so its checkpoints
    and the resume check, keeps the path the user named), and the descriptors to close after
    training. ``recorded`` None (a job from before checksums were recorded): confinement is
    checked, not contents. Raises :class:`InputChanged` with a message for the job's error."""
    read: dict[str, str] = {}
    fds: list[int] = []
    try:
        for dotted, path in user_file_paths(spec).items():
            fd = open_confined(path, root)
            fds.append(fd)
            if recorded is None:  # a job recorded without checksums (before migration 0010)
                expected = None
            elif (expected := recorded.get(dotted)) is None:
                raise InputChanged(f"{dotted}: {path} has no checksum recorded at submit "
                                   "(it could not be opened safely then); submit the job again")
            actual = sha256_fd(fd) if expected is not None else None
            if actual != expected:
                raise InputChanged(f"{dotted}: {path} changed after submit (sha256 "
                                   f"{actual[:12]}…, recorded {expected[:12]}…); refusing to "
                                   "train on it")
            read[dotted] = f"/proc/self/fd/{fd}"
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return read, fds


def name_descriptors(message: str, given: dict[str, Any], read: dict[str, str]) -> str:
    """``message`` with each ``/proc/self/fd/N`` of ``read`` (from :func:`open_inputs`)
    replaced by the path the spec ``given`` named (the engine's errors name what it read)."""
    named = user_file_paths(given)
    for dotted, fd_path in read.items():
        if dotted in named:
            message = message.replace(fd_path, named[dotted])
    return message
