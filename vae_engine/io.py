"""Where the trainer's output goes: a MetricSink for numbers, an ArtifactWriter for files.

The same training loop runs in a notebook (``ListSink`` + ``LocalArtifacts``), the CLI
(``JsonlSink``) and a Celery task (a SQL sink and an artifact store that records rows).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


class MetricSink:
    """Receives metrics. Subclasses override what they need; all methods default to no-ops.

    ``log`` is called every ``log_every`` steps with scalars and at each evaluation with
    ``eval/<key>`` scalars; ``log_eval`` gets the whole evaluation summary (lists included).
    Step numbers are optimizer steps completed; a (key, step) pair is never sent twice in one
    uninterrupted run, but a resumed run may resend points after its checkpoint: sinks that
    persist must ignore duplicates. ``flush`` is called before every checkpoint is written
    and must not return until the points are stored (raise if they cannot be).
    """

    def start(self, total_steps: int, start_step: int) -> None:  # noqa: B027
        pass

    def plan(self, eval_steps: list[int]) -> None:  # noqa: B027
        """Called once after ``start``: the steps after which an evaluation will run (the
        last is ``total_steps``), so a sink can forecast the time left."""

    def log(self, step: int, metrics: dict[str, float]) -> None:  # noqa: B027
        pass

    def log_eval(self, step: int, summary: dict[str, Any]) -> None:  # noqa: B027
        pass

    def flush(self) -> None:  # noqa: B027
        pass


class ListSink(MetricSink):
    """Keeps everything in memory (tests, notebooks)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []
        self.evals: list[tuple[int, dict[str, Any]]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.points.append((step, dict(metrics)))

    def log_eval(self, step: int, summary: dict[str, Any]) -> None:
        self.evals.append((step, summary))

    def series(self, key: str) -> list[tuple[int, float]]:
        return [(s, m[key]) for s, m in self.points if key in m]


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    """JSON with non-finite floats written as null (strict JSON readers reject NaN)."""
    return json.dumps(_finite(obj), default=_json_default)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class JsonlSink(MetricSink):
    """Appends one JSON object per logged step to ``metrics.jsonl``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._fh.write(dumps({"step": step, **metrics}) + "\n")

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class ArtifactWriter:
    """Stores files produced by training; returns a reference (a path) for each.

    ``kind`` is one of ``checkpoint``, ``samples``, ``recon``, ``summary``; ``name`` is a plain
    file name (no separators).
    """

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        raise NotImplementedError


class LocalArtifacts(ArtifactWriter):
    """Writes ``root/<folder>/<name>`` atomically (temp file + rename)."""

    FOLDERS = {"checkpoint": "checkpoints", "samples": "samples", "recon": "recon",
               "summary": "summaries", "traversal": "traversals"}

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        if "/" in name or "\\" in name or name in {"", ".", ".."}:
            raise ValueError(f"bad artifact name {name!r}")
        folder = self.root / self.FOLDERS.get(kind, kind)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        return str(path)


class DiscardArtifacts(ArtifactWriter):
    """Writes nothing (``train`` without an artifact writer)."""

    def write(self, kind: str, step: int, name: str, data: bytes) -> str:
        return ""
