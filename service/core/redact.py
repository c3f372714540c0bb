"""No absolute server paths in what users read (``job.error``, warnings, error messages):
the folders this deployment knows are cut off, so that a path shows relative to the job's
folder (``checkpoints/step-000120.safetensors``), the artifact root (``<job id>/samples/…``),
the dataset root (``uploads/<id>.npz``), the data folder, or the installed code
(``vae_engine/trainer.py``, ``torch/nn/modules/module.py`` in a traceback)."""

from __future__ import annotations

import site
import sys
import sysconfig
import uuid
from pathlib import Path

from service.core.config import Settings

CODE_ROOT = Path(__file__).resolve().parents[2]


def _roots(settings: Settings, job_id: uuid.UUID | None) -> list[tuple[str, str]]:
    """(prefix, replacement), longest prefix first."""
    named = {str(settings.datasets): "<dataset root>", str(settings.artifacts): "<artifacts>",
             str(settings.data_dir.resolve()): "<data dir>"}
    folders = [settings.datasets, settings.artifacts, settings.data_dir.resolve(), CODE_ROOT,
               *(Path(p) for p in {sysconfig.get_paths()["purelib"],
                                   sysconfig.get_paths()["stdlib"], sys.prefix,
                                   *site.getsitepackages()})]
    if job_id is not None:
        folders.append(settings.artifacts / str(job_id))
    pairs = []
    for folder in folders:
        text = str(folder).rstrip("/")
        if len(text) > 1:  # never "/" itself
            pairs.append((text + "/", ""))
            pairs.append((text, named.get(text, ".")))
    return sorted(set(pairs), key=lambda p: -len(p[0]))


def without_server_paths(text: str | None, settings: Settings,
                         job_id: uuid.UUID | None = None) -> str | None:
    if not text:
        return text
    for prefix, replacement in _roots(settings, job_id):
        text = text.replace(prefix, replacement)
    return text
