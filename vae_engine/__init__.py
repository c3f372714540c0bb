"""vae_engine: train one VAE from a typed spec and report its rate-distortion summary.

Pure PyTorch + pydantic; knows nothing of HTTP, SQL or Celery.

    from vae_engine import train, parse_spec
    result = train(parse_spec({...}), sink, artifacts)

The heavy submodules (torch) are imported lazily, so ``vae_engine.spec`` stays light for the
API process.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train", "TrainResult", "TrainSpec", "parse_spec", "load_spec", "load_checkpoint",
           "evaluate", "catalogue"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from vae_engine import trainer

        return getattr(trainer, name)
    if name in ("TrainSpec", "parse_spec", "load_spec"):
        from vae_engine import spec

        return getattr(spec, name)
    if name == "load_checkpoint":
        from vae_engine.checkpoint import load_checkpoint

        return load_checkpoint
    if name == "evaluate":
        from vae_engine.evaluate import evaluate

        return evaluate
    if name == "catalogue":
        from vae_engine.catalogue import catalogue

        return catalogue
    raise AttributeError(name)
