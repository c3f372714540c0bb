"""Checkpoints: one safetensors file, no pickle.

Tensors: ``model.*`` and ``likelihood.*`` (weights and buffers), ``optim.<i>.<name>``
(optimizer per-parameter state), ``rng.cpu`` / ``rng.cuda`` (generator states as uint8).
Metadata key ``vaelab``: JSON with the format version, step, epoch, the resolved spec, the
data shape, the KL scheme's state, the optimizer's param groups and scalar state. The spec
and data shape make the file self-contained: :func:`load_checkpoint` rebuilds the model from
it alone (as nanoGPT's checkpoints carry ``model_args``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save

from vae_engine.errors import VaelabError

FORMAT = 1


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for name, val in state.items():
            if torch.is_tensor(val):
                tensors[f"optim.{idx}.{name}"] = val.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, val in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = val
    for idx, sc in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def encode_checkpoint(
    *, model: torch.nn.Module, likelihood: torch.nn.Module, optimizer: torch.optim.Optimizer,
    step: int, epoch: int, spec: Any, data_shape: tuple[int, int, int],
    scheme_state: dict[str, Any], extra: dict[str, Any] | None = None,
) -> bytes:
    tensors = {f"model.{k}": v.detach().cpu().clone().contiguous()
               for k, v in model.state_dict().items()}
    tensors.update({f"likelihood.{k}": v.detach().cpu().clone().contiguous()
                    for k, v in likelihood.state_dict().items()})
    opt_tensors, opt_meta = _optimizer_to_flat(optimizer)
    tensors.update(opt_tensors)
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "format": FORMAT, "step": step, "epoch": epoch,
        "spec": spec.model_dump(mode="json"), "data_shape": list(data_shape),
        "scheme": scheme_state, "optimizer": opt_meta, "extra": extra or {},
    }
    return save(tensors, metadata={"vaelab": json.dumps(meta)})


def read_checkpoint(source: str | Path | bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (tensors, metadata) of a checkpoint given its path or its bytes."""
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")
        raw = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception as exc:  # OSError, bad JSON, or safetensors' own SafetensorError
        raise VaelabError(f"cannot read checkpoint {name}: {exc}") from None
    if "vaelab" not in raw:
        raise VaelabError(f"{name} is not a vaelab checkpoint (no 'vaelab' metadata)")
    return tensors, json.loads(raw["vaelab"])


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    _optimizer_from_flat(opt, tensors, meta["optimizer"])


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module
    likelihood: torch.nn.Module
    spec: Any
    step: int
    meta: dict[str, Any]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1]: the likelihood's mean at prior samples."""
        gen = _generator(self.model, seed)
        return self.likelihood.mean(self.model.sample_prior(n, temperature, gen))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        gen = _generator(self.model, seed)
        return self.likelihood.mean(self.model(x, gen).params)


def _generator(model: torch.nn.Module, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    device = next(model.parameters()).device
    return torch.Generator(device=device).manual_seed(seed)


def load_checkpoint(source: str | Path | bytes, device: str = "cpu") -> LoadedCheckpoint:
    """Rebuild the model and likelihood from a checkpoint alone, in eval mode."""
    from vae_engine.likelihoods import build_likelihood
    from vae_engine.models import build_model
    from vae_engine.spec import TrainSpec

    tensors, meta = read_checkpoint(source)
    spec = TrainSpec.model_validate(meta["spec"])
    likelihood = build_likelihood(spec.likelihood)
    shape = tuple(meta["data_shape"])
    model = build_model(spec.model, shape, likelihood.params_per_dim * shape[0])
    model.load_state_dict(split_prefix(tensors, "model"))
    likelihood.load_state_dict(split_prefix(tensors, "likelihood"))
    model.to(device).eval()
    likelihood.to(device).eval()
    return LoadedCheckpoint(model, likelihood, spec, int(meta["step"]), meta)
