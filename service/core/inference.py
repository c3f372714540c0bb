"""Inference on a stored checkpoint: latent traversals and fresh samples, as PNG bytes.

The only service module that runs torch. torch and the engine's model code are imported
inside the functions, on first use, so importing this module (and so starting the API)
imports no torch. Callers are sync request handlers, i.e. threads of the server's pool, never
the event loop; at most ``TORCH_SLOTS`` computations run at once in this process, and a caller
that cannot get a slot within ``SLOT_WAIT_S`` gets :class:`InferenceBusy` (the API's 503).

Owned here, per process: the slot semaphore, the loaded-checkpoint cache (keyed by path and
sha256, so a rewritten file is a new entry) and the test-split cache of the last datasets.
The checkpoint path given is already resolved inside the artifact root by the caller; a
dataset file a checkpoint's spec names is read only from inside the dataset root.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

from service.artifact_paths import UnsafePath, resolve_inside

TORCH_SLOTS = threading.BoundedSemaphore(2)
SLOT_WAIT_S = 60.0
SPLITS_KEPT = 2  # test splits of this many datasets stay in memory


class InferenceBusy(RuntimeError):
    """Every slot stayed taken for ``SLOT_WAIT_S``: try again shortly."""


class BadInferenceInput(ValueError):
    """The request or the checkpoint cannot give an image: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class _Slot:
    """One of TORCH_SLOTS for the duration of a torch computation."""

    def __enter__(self) -> None:
        if not TORCH_SLOTS.acquire(timeout=SLOT_WAIT_S):
            raise InferenceBusy("all sample generators are busy; try again shortly")

    def __exit__(self, *exc: object) -> None:
        TORCH_SLOTS.release()


@functools.lru_cache(maxsize=4)
def _load(path: str, sha256: str) -> Any:  # sha256: a rewritten file is a new entry
    from vae_engine.checkpoint import load_checkpoint

    return load_checkpoint(path)


_SPLITS: dict[str, Any] = {}  # the test splits of the last few datasets traversed
_SPLITS_LOCK = threading.Lock()  # up to TORCH_SLOTS handler threads use the cache at once


def clear_caches() -> None:
    """Forget loaded checkpoints and test splits (a dataset file replaced or removed)."""
    _load.cache_clear()
    with _SPLITS_LOCK:
        _SPLITS.clear()


def load_test_split(dataset: Any, dataset_root: Path) -> Any:
    """The test split of a checkpoint's dataset (its spec's ``dataset``); a file the spec
    names is read only from inside ``dataset_root`` (a checkpoint's spec is not trusted to
    name any file on this host)."""
    from vae_engine.data import load_dataset

    for field in type(dataset).user_file_fields:
        try:
            dataset = dataset.model_copy(update={
                field: str(resolve_inside(dataset_root, getattr(dataset, field)))})
        except UnsafePath as exc:
            raise BadInferenceInput(f"spec.dataset.{field}", str(exc)) from None
    key = json.dumps(dataset.model_dump(mode="json"), sort_keys=True)
    with _SPLITS_LOCK:  # held while loading: the other thread waits rather than loads twice
        if key not in _SPLITS:
            while len(_SPLITS) >= SPLITS_KEPT:
                _SPLITS.pop(next(iter(_SPLITS)))
            _SPLITS[key] = load_dataset(dataset).x_test
        return _SPLITS[key]


def traversal(checkpoint: str, sha256: str, dataset_root: Path, index: int, max_units: int,
              unit_scores: list[float | None] | None = None) -> bytes:
    """A PNG grid: each active unit of the checkpoint's model varied around test example
    ``index``; rows ordered by ``unit_scores`` (the evaluation's per-unit variance) when
    every unit has one."""
    if unit_scores is not None and any(v is None for v in unit_scores):
        unit_scores = None
    with _Slot():
        import torch

        from vae_engine.errors import VaelabError
        from vae_engine.traversal import traversal_png

        try:
            ck = _load(checkpoint, sha256)
            # a missing or damaged dataset file is a DataError (a VaelabError): the
            # caller's 422, not a 500
            x_test = load_test_split(ck.spec.dataset, dataset_root)
            if index >= x_test.shape[0]:
                raise BadInferenceInput("index", f"the test split has {x_test.shape[0]} "
                                        "examples")
            with torch.no_grad():
                return traversal_png(ck, x_test[index : index + 1], max_units=max_units,
                                     unit_scores=unit_scores)
        except VaelabError as exc:
            raise BadInferenceInput("body", str(exc)) from None


def fresh_samples(checkpoint: str, sha256: str, n: int, temperature: float,
                  seed: int | None) -> bytes:
    """A PNG grid of ``n`` likelihood means at z ~ N(0, T² I); the same seed, the same
    image."""
    with _Slot():
        from vae_engine.errors import VaelabError
        from vae_engine.traversal import fresh_samples as sample_png

        try:
            return sample_png(_load(checkpoint, sha256), n, temperature, seed)
        except VaelabError as exc:
            raise BadInferenceInput("body", str(exc)) from None
