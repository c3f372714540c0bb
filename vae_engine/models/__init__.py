"""Architectures. Importing this package registers every built-in architecture."""

from vae_engine.models import conv, hierarchical, mlp  # noqa: F401  (registration)
from vae_engine.models.base import ARCHITECTURES, ModelOutput, VAEModel


def build_model(spec, data_shape: tuple[int, int, int], out_channels: int) -> VAEModel:
    return ARCHITECTURES.get(spec.arch, "model.arch")(spec, data_shape, out_channels)


__all__ = ["ARCHITECTURES", "ModelOutput", "VAEModel", "build_model"]
