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
           "evaluate", "catalogue", "disentanglement_scores"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from vae_engine import trainer

        return getattr(trainer, name)
    if name in ("TrainSpec", "parse_spec", "load_spec"):
        from vae_engine import spec

        return getattr(spec, name)
    if name == "disentanglement_scores":
        from vae_engine.evaluate.disentanglement import disentanglement_scores

        return disentanglement_scores
    if name == "load_checkpoint":
        from vae_engine.checkpoint import load_checkpoint

        return load_checkpoint
    if name in ("evaluate", "catalogue"):
        # Importing the submodule of the same name binds the *module* to this attribute,
        # so ``from vae_engine import catalogue`` would get the module; bind the function
        # instead (``from vae_engine.catalogue import render_markdown`` is unaffected).
        import importlib

        module = "vae_engine.evaluate.summary" if name == "evaluate" else f"vae_engine.{name}"
        fn = getattr(importlib.import_module(module), name)
        globals()[name] = fn
        return fn
    raise AttributeError(name)
